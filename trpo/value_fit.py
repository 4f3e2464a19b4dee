"""Fitting V_phi by minibatch regression, with the MLP's backward pass written by hand.

Each Adam step needs the gradient of the minibatch MSE, J^T u with u = 2 (V(x) - y) / B
(`mlp_derivatives.vjp`). For the small MLPs used here the per-op bookkeeping of autograd, and
more so of torch.func, costs about as much as the arithmetic: with 64x64 tanh, an epoch takes
2.6x as long with torch.func.grad_and_value and 1.25x as long with a plain loss.backward()
(3.2x and 1.6x inside the trainer on the HalfCheetah-v5 preset; benchmarks/autodiff.py).
tests/test_value_fit.py checks the gradients, and whole fits, against autograd and
torch.optim.Adam.
"""

from __future__ import annotations

import torch
from torch import nn

from trpo import mlp_derivatives


def mse_gradients(
    net: nn.Sequential, x: torch.Tensor, y: torch.Tensor
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Loss mean((net(x) - y)^2) and its gradient for every parameter of net, in order.

    net is Linear layers with Tanh/ReLU/ELU between them and a 1-unit output; x [B, n_0],
    y [B]. The gradient is J^T u with u = dloss/dnet(x) = 2 (net(x) - y) / B.
    """
    cache = mlp_derivatives.forward(net, x)
    with torch.no_grad():
        error = cache.output.squeeze(-1) - y
        loss = error.pow(2).mean()
        u = (error * (2.0 / y.numel())).unsqueeze(-1)
    return loss, mlp_derivatives.vjp(cache, u)


def fit_value(
    value_net: nn.Sequential,
    optimizer: torch.optim.Optimizer,
    obs: torch.Tensor,
    returns: torch.Tensor,
    epochs: int,
    minibatch: int,
    generator: torch.Generator,
) -> float:
    """Regress value_net(obs) on returns: `epochs` passes of shuffled minibatches, one Adam step
    each. Returns the mean minibatch loss (the loss before the fit when epochs = 0)."""
    n = obs.shape[0]
    size = min(minibatch, n)
    params = list(value_net.parameters())
    total, steps = torch.zeros(()), 0
    for _ in range(epochs):
        order = torch.randperm(n, generator=generator)
        shuffled_obs, shuffled_returns = obs[order], returns[order]
        for start in range(0, n, size):
            loss, grads = mse_gradients(
                value_net,
                shuffled_obs[start : start + size],
                shuffled_returns[start : start + size],
            )
            for p, g in zip(params, grads, strict=True):
                p.grad = g
            optimizer.step()
            total += loss
            steps += 1
    if steps == 0:
        with torch.no_grad():
            return float((value_net(obs).squeeze(-1) - returns).pow(2).mean())
    return float(total / steps)
