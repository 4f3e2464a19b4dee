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
H v is then one forward-mode pass (J v) and one backward pass (J^T u) through the MLP
(`mlp_derivatives`): a few matmuls. Building it and the 26 products of a HalfCheetah-v5
iteration (64x64 tanh, batch 2048) take 2.4x less time than autograd's double backward and 2.6x
less than torch.func's jvp and vjp (benchmarks/autodiff.py). The tests check it against the
explicit Hessian and against `natural.fisher_vector_product`.
"""

from __future__ import annotations

import torch

from trpo import mlp_derivatives
from trpo.policies import (
    BernoulliPolicy,
    CategoricalPolicy,
    GaussianPolicy,
    MultiCategoricalPolicy,
    Policy,
)

_SUPPORTED = (CategoricalPolicy, GaussianPolicy, MultiCategoricalPolicy, BernoulliPolicy)


class MLPFisher:
    """v -> (H + damping I) v for `policy` on the batch `obs`, at the current parameters."""

    def __init__(self, policy: Policy, obs: torch.Tensor, damping: float = 0.0) -> None:
        if not isinstance(policy, _SUPPORTED):
            raise TypeError(f"MLPFisher supports MLP policies, not {type(policy).__name__}")
        self.policy = policy
        self.damping = damping
        self.n = obs.shape[0]
        h = self._linearize(obs)
        with torch.no_grad():
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
            dz = self._jvp(parts)
            # output-space Fisher, averaged over the batch
            u = self._output_fisher(dz) / self.n
            grads = [g.reshape(-1) for g in self._vjp(u)]
            if v_log_std is not None:
                grads.insert(0, 2.0 * v_log_std)
            hv = torch.cat(grads)
            return hv + self.damping * v if self.damping else hv

    # J v and J^T u of the network output at the current parameters (hand-written; a subclass
    # may supply them otherwise, as benchmarks/autodiff.py does with torch.func)
    def _linearize(self, obs: torch.Tensor) -> torch.Tensor:
        """One forward pass at the current parameters, kept for _jvp and _vjp; the output."""
        self.cache = mlp_derivatives.forward(self.policy.net, obs)
        return self.cache.output

    def _jvp(self, tangents: list[torch.Tensor]) -> torch.Tensor:
        """J v [B, n_out] for the network parameters' parts of v, in parameters() order."""
        return mlp_derivatives.jvp(self.cache, tangents)

    def _vjp(self, u: torch.Tensor) -> list[torch.Tensor]:
        """J^T u for u [B, n_out], one gradient per network parameter."""
        return mlp_derivatives.vjp(self.cache, u)

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
