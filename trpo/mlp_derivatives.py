"""First derivatives of an MLP's output with respect to its parameters, written out by hand.

The MLP is an nn.Sequential Linear, phi, Linear, phi, ..., Linear (phi one of
ACTIVATION_DERIVATIVES' keys), as `policies.mlp` builds it. With h_0 = x [B, n_0]:
  z_l = h_{l-1} W_l^T + b_l,   h_l = phi(z_l)   (l = 1..L-1),   y = z_L   [B, n_L]
For the parameters theta = (W_1, b_1, ..., W_L, b_L), in net.parameters() order:
  J v   (forward mode, the tangent of y along v = (dW_l, db_l)):
        dz_1 = x dW_1^T + db_1,   dz_l = h_{l-1} dW_l^T + db_l + (dz_{l-1} * phi'(z_{l-1})) W_l^T
  J^T u (reverse mode, backpropagation: Rumelhart, Hinton and Williams 1986), with d_L = u:
        dW_l = d_l^T h_{l-1},   db_l = sum_B d_l,   d_{l-1} = (d_l W_l) * phi'(z_{l-1})
Both need only the layer inputs h_{l-1} and the slopes phi'(z_l) of one forward pass, which
`forward` caches; tests/test_mlp_derivatives.py checks both against torch.func.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

Derivative = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

# phi'(z), written in terms of the pre-activation z and the output h = phi(z)
ACTIVATION_DERIVATIVES: dict[type[nn.Module], Derivative] = {
    nn.Tanh: lambda z, h: 1.0 - h * h,
    nn.ReLU: lambda z, h: (z > 0).to(h.dtype),
    nn.ELU: lambda z, h: torch.where(z > 0, torch.ones_like(h), h + 1.0),  # alpha = 1
}


@dataclass(frozen=True)
class MLPCache:
    """One forward pass of an MLP, kept for J v and J^T u at the same parameters.

    linears: the L Linear layers; inputs[l]: the input h_l of linears[l], [B, n_l];
    slopes[l]: phi'(z) after linears[l], [B, n_{l+1}] (L - 1 of them); output: y [B, n_L].
    """

    linears: list[nn.Linear]
    inputs: list[torch.Tensor]
    slopes: list[torch.Tensor]
    output: torch.Tensor


def mlp_layers(net: nn.Sequential) -> tuple[list[nn.Linear], list[nn.Module]]:
    """The Linear layers and the activations between them; TypeError for any other layout."""
    layers = list(net)
    linears = layers[0::2]
    activations = layers[1::2]
    if not layers or len(linears) != len(activations) + 1:
        raise TypeError("expected an nn.Sequential Linear, activation, ..., Linear")
    for m in linears:
        if not isinstance(m, nn.Linear):
            raise TypeError(f"expected nn.Linear at even positions, got {type(m).__name__}")
    for m in activations:
        if type(m) not in ACTIVATION_DERIVATIVES or getattr(m, "alpha", 1.0) != 1.0:
            raise TypeError(f"no hand-written derivative for activation {m!r}")
    return linears, activations


def forward(net: nn.Sequential, x: torch.Tensor) -> MLPCache:
    """y = net(x) for x [B, n_0], caching each layer's input and activation slope."""
    linears, activations = mlp_layers(net)
    inputs: list[torch.Tensor] = []
    slopes: list[torch.Tensor] = []
    with torch.no_grad():
        h = x
        for i, linear in enumerate(linears):
            inputs.append(h)
            z = torch.addmm(linear.bias, h, linear.weight.t())
            if i < len(activations):
                h = activations[i](z)
                slopes.append(ACTIVATION_DERIVATIVES[type(activations[i])](z, h))
            else:
                h = z
    return MLPCache(linears, inputs, slopes, h)


def jvp(cache: MLPCache, tangents: Sequence[torch.Tensor]) -> torch.Tensor:
    """J v: the output's tangent [B, n_L] along the parameter direction v.

    tangents: (dW_1, db_1, ..., dW_L, db_L), each viewable as its parameter's shape.
    """
    with torch.no_grad():
        dz: torch.Tensor | None = None
        for i, linear in enumerate(cache.linears):
            dw = tangents[2 * i].view_as(linear.weight)
            out = torch.addmm(tangents[2 * i + 1], cache.inputs[i], dw.t())
            if dz is not None:
                out = out + (dz * cache.slopes[i - 1]) @ linear.weight.t()
            dz = out
    assert dz is not None
    return dz


def vjp(cache: MLPCache, u: torch.Tensor) -> list[torch.Tensor]:
    """J^T u, summed over the batch: (dW_1, db_1, ..., dW_L, db_L) for u [B, n_L] (the gradient
    of sum(u * y) with respect to each parameter, in net.parameters() order and shapes)."""
    grads: list[torch.Tensor] = []
    with torch.no_grad():
        d = u
        for i in range(len(cache.linears) - 1, -1, -1):
            grads.append(d.sum(0))  # bias
            grads.append(d.t() @ cache.inputs[i])  # weight
            if i > 0:
                d = (d @ cache.linears[i].weight) * cache.slopes[i - 1]
    grads.reverse()
    return grads
