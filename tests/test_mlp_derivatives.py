"""The hand-written MLP forward cache, J v and J^T u against torch.func's jvp and vjp."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.func import functional_call

from trpo import mlp_derivatives
from trpo.policies import mlp

ACTIVATIONS = ["tanh", "relu", "elu"]
# torch.func.jvp's first call scripts forward-AD decompositions with torch.jit (once a process)
pytestmark = pytest.mark.filterwarnings(
    "ignore:`torch.jit.script` is deprecated:DeprecationWarning"
)
SHAPES = [(3, (), 2), (3, (5,), 4), (17, (64, 64), 6), (2, (3, 4, 5), 1)]


def _net(sizes, activation, seed):
    """A float64 MLP with every parameter (biases too) moved off its init."""
    gen = torch.Generator().manual_seed(seed)
    net = mlp(list(sizes), activation, 1.0, gen).double()
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.3 * torch.randn(p.shape, generator=gen, dtype=p.dtype))
    return net


def _reference(net, x, tangents, u):
    """(net(x), J v, J^T u) by torch.func, through functional_call on a copy of the parameters."""
    params = {k: p.detach().clone() for k, p in net.named_parameters()}
    v = dict(zip(params, tangents, strict=True))

    def f(p):
        return functional_call(net, p, (x,))

    y, jv = torch.func.jvp(f, (params,), (v,))
    _, pullback = torch.func.vjp(f, params)
    (jtu,) = pullback(u)
    return y, jv, [jtu[k] for k in params]


def _check(n_in, hidden, n_out, activation, batch, seed):
    sizes = (n_in, *hidden, n_out)
    net = _net(sizes, activation, seed)
    gen = torch.Generator().manual_seed(seed + 1)
    x = torch.randn(batch, n_in, generator=gen, dtype=torch.float64)
    tangents = [torch.randn(p.shape, generator=gen, dtype=p.dtype) for p in net.parameters()]
    u = torch.randn(batch, n_out, generator=gen, dtype=torch.float64)
    y, jv, jtu = _reference(net, x, tangents, u)

    cache = mlp_derivatives.forward(net, x)
    torch.testing.assert_close(cache.output, y, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(mlp_derivatives.jvp(cache, tangents), jv, rtol=1e-10, atol=1e-12)
    # flat tangents, as fisher.py passes them, give the same J v
    flat = [t.reshape(-1) for t in tangents]
    torch.testing.assert_close(mlp_derivatives.jvp(cache, flat), jv, rtol=1e-10, atol=1e-12)
    grads = mlp_derivatives.vjp(cache, u)
    assert [g.shape for g in grads] == [p.shape for p in net.parameters()]
    for g, ref in zip(grads, jtu, strict=True):
        torch.testing.assert_close(g, ref, rtol=1e-10, atol=1e-12)
    assert not any(t.requires_grad for t in [cache.output, *grads])


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize(("n_in", "hidden", "n_out"), SHAPES)
def test_jvp_and_vjp_equal_torch_func(activation, n_in, hidden, n_out):
    _check(n_in, hidden, n_out, activation, batch=33, seed=len(hidden) + n_in)


@settings(max_examples=25, deadline=None)
@given(
    n_in=st.integers(1, 6),
    hidden=st.lists(st.integers(1, 7), max_size=3),
    n_out=st.integers(1, 4),
    activation=st.sampled_from(ACTIVATIONS),
    batch=st.integers(1, 9),
    seed=st.integers(0, 2**16),
)
def test_jvp_and_vjp_equal_torch_func_for_any_shape(n_in, hidden, n_out, activation, batch, seed):
    _check(n_in, tuple(hidden), n_out, activation, batch, seed)


def test_vjp_is_the_adjoint_of_jvp():
    """<J v, u> = <v, J^T u> for the same cache (float32, the trainer's dtype)."""
    net = mlp([17, 64, 64, 6], "tanh", 1.0, torch.Generator().manual_seed(0))
    gen = torch.Generator().manual_seed(1)
    cache = mlp_derivatives.forward(net, torch.randn(256, 17, generator=gen))
    v = [torch.randn(p.shape, generator=gen) for p in net.parameters()]
    u = torch.randn(256, 6, generator=gen)
    lhs = float((mlp_derivatives.jvp(cache, v) * u).sum())
    rhs = sum(float((a * b).sum()) for a, b in zip(v, mlp_derivatives.vjp(cache, u), strict=True))
    assert lhs == pytest.approx(rhs, rel=1e-4)


@pytest.mark.parametrize(
    "net",
    [
        nn.Sequential(nn.Linear(2, 3), nn.Sigmoid(), nn.Linear(3, 1)),
        nn.Sequential(nn.Linear(2, 3), nn.ELU(alpha=0.5), nn.Linear(3, 1)),
        nn.Sequential(nn.Linear(2, 3), nn.Linear(3, 1)),
        nn.Sequential(nn.Linear(2, 3), nn.Tanh()),
        nn.Sequential(),
    ],
)
def test_unsupported_layouts_are_refused(net):
    with pytest.raises(TypeError):
        mlp_derivatives.forward(net, torch.zeros(1, 2))
