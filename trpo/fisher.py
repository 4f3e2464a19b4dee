"""Exact Fisher-vector products for MLP policies, without autograd.

At theta_old the Hessian of the mean KL(pi_old || pi_theta) is H = (1/N) sum_i J_i^T M_i J_i,
with J_i the Jacobian of the network output (logits or Gaussian mean) for sample i and M_i the
Hessian of the KL in output space (the KL's gradient there is zero at theta_old, so no other
term survives: the Gauss-Newton form of Schraudolph 2002 and Martens 2020, "New insights and
perspectives on the natural gradient method"):
  categorical over logits z:    M = diag(p) - p p^T
  MultiDiscrete logits:         block diagonal, one block diag(p_k) - p_k p_k^T per component
  Bernoulli logits z (bits):    M = diag(p (1 - p)), p = sigmoid(z)
  Gaussian mean mu:             M = diag(1 / sigma^2);  state-independent log std: 2 I
H v is then one forward-mode pass (J v) and one backward pass (J^T u) through the MLP: a few
matmuls, about 2-4x cheaper than autograd's double backward at these sizes. The tests check it
against the explicit Hessian and against `natural.fisher_vector_product`.
"""

from __future__ import annotations

import torch
from torch import nn

from trpo.policies import (
    BernoulliPolicy,
    CategoricalPolicy,
    GaussianPolicy,
    MultiCategoricalPolicy,
    Policy,
)

_SUPPORTED = (CategoricalPolicy, GaussianPolicy, MultiCategoricalPolicy, BernoulliPolicy)

_DERIVATIVES = {
    nn.Tanh: lambda z, h: 1.0 - h * h,
    nn.ReLU: lambda z, h: (z > 0).to(h.dtype),
    nn.ELU: lambda z, h: torch.where(z > 0, torch.ones_like(h), h + 1.0),
}


class MLPFisher:
    """v -> (H + damping I) v for `policy` on the batch `obs`, at the current parameters."""

    def __init__(self, policy: Policy, obs: torch.Tensor, damping: float = 0.0) -> None:
        if not isinstance(policy, _SUPPORTED):
            raise TypeError(f"MLPFisher supports MLP policies, not {type(policy).__name__}")
        self.policy = policy
        self.damping = damping
        layers = list(policy.net)
        self.linears = [m for m in layers if isinstance(m, nn.Linear)]
        self.derivatives = [_DERIVATIVES[type(m)] for m in layers if not isinstance(m, nn.Linear)]
        self.n = obs.shape[0]
        with torch.no_grad():
            self.inputs: list[torch.Tensor] = []  # input of each linear layer
            self.slopes: list[torch.Tensor] = []  # activation derivative after each hidden layer
            h = obs
            for i, linear in enumerate(self.linears):
                self.inputs.append(h)
                z = torch.addmm(linear.bias, h, linear.weight.t())
                if i < len(self.derivatives):
                    h = layers[2 * i + 1](z)
                    self.slopes.append(self.derivatives[i](z, h))
                else:
                    h = z
            if isinstance(policy, CategoricalPolicy):
                self.probs = torch.softmax(h, dim=-1)  # [B, n]
            elif isinstance(policy, MultiCategoricalPolicy):
                self.probs = policy.log_softmax(h).exp()  # [B, sum(nvec)]
                # component of each logit [sum(nvec)], to add up p * dz within each component
                counts = torch.tensor(policy.nvec)
                self.component = torch.repeat_interleave(torch.arange(len(policy.nvec)), counts)
            elif isinstance(policy, BernoulliPolicy):
                self.bernoulli_var = torch.sigmoid(h) * torch.sigmoid(-h)  # p (1 - p) [B, n]
            else:
                self.inv_var = torch.exp(-2.0 * policy.log_std.detach())
        names = [name for name, _ in policy.named_parameters()]
        self.sizes = [p.numel() for p in policy.parameters()]
        # parameters() lists the module's own log std (Gaussian) before the network's
        self.log_std_first = names[0] == "log_std"
        if isinstance(policy, GaussianPolicy) and not self.log_std_first:
            raise ValueError("expected log_std to be the first parameter of a Gaussian policy")

    def __call__(self, v: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            parts = list(torch.split(v, self.sizes))
            v_log_std = parts.pop(0) if self.log_std_first else None
            # forward mode: dz = J v, layer by layer
            dz = None
            for i, linear in enumerate(self.linears):
                dw = parts[2 * i].view_as(linear.weight)
                db = parts[2 * i + 1]
                out = torch.addmm(db, self.inputs[i], dw.t())
                if dz is not None:
                    out = out + (dz * self.slopes[i - 1]) @ linear.weight.t()
                dz = out
            # output-space Fisher, averaged over the batch
            u = self._output_fisher(dz)
            u = u / self.n
            # backward: J^T u
            grads: list[torch.Tensor] = []
            d = u
            for i in range(len(self.linears) - 1, -1, -1):
                grads.append(d.sum(0))
                grads.append((d.t() @ self.inputs[i]).reshape(-1))
                if i > 0:
                    d = (d @ self.linears[i].weight) * self.slopes[i - 1]
            grads.reverse()
            if v_log_std is not None:
                grads.insert(0, 2.0 * v_log_std)
            hv = torch.cat(grads)
            return hv + self.damping * v if self.damping else hv

    def _output_fisher(self, dz: torch.Tensor) -> torch.Tensor:
        """M dz for the network-output directions dz [B, n_out], sample by sample."""
        policy = self.policy
        if isinstance(policy, CategoricalPolicy):
            return self.probs * dz - self.probs * (self.probs * dz).sum(-1, keepdim=True)
        if isinstance(policy, MultiCategoricalPolicy):
            p_dz = self.probs * dz
            per_component = torch.zeros(dz.shape[0], len(policy.nvec), dtype=dz.dtype).index_add_(
                1, self.component, p_dz
            )  # p_k^T dz_k  [B, K]
            return p_dz - self.probs * per_component[:, self.component]
        if isinstance(policy, BernoulliPolicy):
            return self.bernoulli_var * dz
        return dz * self.inv_var
