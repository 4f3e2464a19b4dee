"""The value fit's hand-written gradients and its Adam loop against plain autograd."""

import copy
import statistics

import pytest
import torch

from trpo.policies import ValueNetwork
from trpo.value_fit import fit_value, mse_gradients

ACTIVATIONS = ["tanh", "relu", "elu"]


def _value_net(activation, dtype, seed=0, hidden=(16, 16), obs_dim=5):
    gen = torch.Generator().manual_seed(seed)
    net = ValueNetwork(obs_dim, hidden, activation, gen).net.to(dtype)
    with torch.no_grad():  # biases off zero too, so every parameter's gradient is exercised
        for p in net.parameters():
            p.add_(0.1 * torch.randn(p.shape, generator=gen, dtype=dtype))
    return net


def _data(n, dtype, obs_dim=5, seed=1):
    gen = torch.Generator().manual_seed(seed)
    obs = torch.randn(n, obs_dim, generator=gen, dtype=dtype)
    returns = obs[:, 0].sin() + 0.5 * obs[:, 1] ** 2 + 0.1 * torch.randn(n, generator=gen)
    return obs, returns.to(dtype)


def _adam(net, fused):
    return torch.optim.Adam(net.parameters(), lr=3e-3, eps=1e-5, fused=fused)


def reference_fit(net, optimizer, obs, returns, epochs, minibatch, generator):
    """The value fit written with autograd: the same permutations drawn from the same generator,
    the same minibatch slices, loss.backward() and optimizer.step()."""
    n = obs.shape[0]
    size = min(minibatch, n)
    losses = []
    for _ in range(epochs):
        order = torch.randperm(n, generator=generator)
        for start in range(0, n, size):
            rows = order[start : start + size]
            optimizer.zero_grad()
            loss = torch.nn.functional.mse_loss(net(obs[rows]).squeeze(-1), returns[rows])
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
    return statistics.fmean(losses)


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_mse_gradients_equal_autograd(activation):
    net = _value_net(activation, torch.float64)
    obs, returns = _data(37, torch.float64)
    loss, grads = mse_gradients(net, obs, returns)
    reference = torch.nn.functional.mse_loss(net(obs).squeeze(-1), returns)
    expected = torch.autograd.grad(reference, list(net.parameters()))
    torch.testing.assert_close(loss, reference.detach(), rtol=1e-14, atol=0)
    for g, e in zip(grads, expected, strict=True):
        torch.testing.assert_close(g, e, rtol=1e-11, atol=1e-14)


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize(
    ("dtype", "fused", "rtol", "atol"),
    [(torch.float64, False, 1e-12, 1e-14), (torch.float32, True, 1e-5, 1e-6)],
)
def test_fit_value_equals_autograd_and_adam(activation, dtype, fused, rtol, atol):
    """Five epochs of 200 samples in minibatches of 64 (the last one short): same parameters,
    same Adam state and same mean loss as the autograd reference, and the generator left in
    the same state. float32 with fused Adam is what the trainer runs."""
    net = _value_net(activation, dtype)
    ref_net, initial = copy.deepcopy(net), copy.deepcopy(net)
    obs, returns = _data(200, dtype)
    optimizer, ref_optimizer = _adam(net, fused), _adam(ref_net, fused)
    gen, ref_gen = torch.Generator().manual_seed(7), torch.Generator().manual_seed(7)

    loss = fit_value(net, optimizer, obs, returns, 5, 64, gen)
    ref_loss = reference_fit(ref_net, ref_optimizer, obs, returns, 5, 64, ref_gen)

    assert loss == pytest.approx(ref_loss, rel=1e-6)
    for p, q, p0 in zip(net.parameters(), ref_net.parameters(), initial.parameters(), strict=True):
        assert (p - p0).abs().max() > 1e-3  # every parameter moved, by far more than atol
        torch.testing.assert_close(p, q, rtol=rtol, atol=atol)
    for state, ref_state in zip(
        optimizer.state_dict()["state"].values(),
        ref_optimizer.state_dict()["state"].values(),
        strict=True,
    ):
        assert float(state["step"]) == float(ref_state["step"]) == 5 * 4
        torch.testing.assert_close(state["exp_avg_sq"], ref_state["exp_avg_sq"], rtol=1e-5, atol=0)
    assert torch.equal(gen.get_state(), ref_gen.get_state())
    # the fit did something: the loss fell
    assert fit_value(net, optimizer, obs, returns, 0, 64, gen) < 0.8 * loss


def test_fit_value_with_minibatch_larger_than_batch_takes_one_full_step():
    net = _value_net("tanh", torch.float64)
    ref_net = copy.deepcopy(net)
    obs, returns = _data(30, torch.float64)
    fit_value(net, _adam(net, False), obs, returns, 2, 512, torch.Generator().manual_seed(0))
    ref_opt = _adam(ref_net, False)
    reference_fit(ref_net, ref_opt, obs, returns, 2, 512, torch.Generator().manual_seed(0))
    for p, q in zip(net.parameters(), ref_net.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=1e-10, atol=1e-12)


def test_zero_epochs_returns_the_loss_before_the_fit_and_changes_nothing():
    net = _value_net("relu", torch.float64)
    before = copy.deepcopy(net.state_dict())
    obs, returns = _data(50, torch.float64)
    loss = fit_value(net, _adam(net, False), obs, returns, 0, 16, torch.Generator())
    with torch.no_grad():
        expected = float(torch.nn.functional.mse_loss(net(obs).squeeze(-1), returns))
    assert loss == pytest.approx(expected, rel=1e-14)
    for name, t in net.state_dict().items():
        assert torch.equal(t, before[name])
