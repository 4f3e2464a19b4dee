"""The autograd-free Fisher-vector product against the explicit Hessian of the mean KL."""

import pytest
import torch
from gymnasium import spaces
from torch.distributions import Bernoulli, Categorical, Independent, kl_divergence
from torch.func import functional_call

from trpo.envs import space_info
from trpo.fisher import MLPFisher
from trpo.natural import conjugate_gradient, fisher_vector_product
from trpo.policies import make_policy

from .test_natural import _distribution

NVEC = (3, 2, 4)
KINDS = ["categorical", "gaussian", "multi_categorical", "bernoulli"]
_ACTIONS = {
    "categorical": lambda n: spaces.Discrete(n),
    "gaussian": lambda n: spaces.Box(-1.0, 1.0, (n,)),
    "multi_categorical": lambda n: spaces.MultiDiscrete(NVEC),
    "bernoulli": lambda n: spaces.MultiBinary(n),
}


def _policy(kind, activation, seed):
    """A tiny float64 policy moved off its near-zero output init, so every parameter matters."""
    policy = _initial_policy(kind, activation, seed, 3, 3, (5, 4), -0.4).double()
    gen = torch.Generator().manual_seed(seed + 100)
    with torch.no_grad():
        for p in policy.parameters():
            p.add_(0.5 * torch.randn(p.shape, generator=gen, dtype=p.dtype))
    return policy


def _initial_policy(kind, activation, seed, obs_dim, act_dim, hidden, log_std_init):
    gen = torch.Generator().manual_seed(seed)
    space = space_info(spaces.Box(-1.0, 1.0, (obs_dim,)), _ACTIONS[kind](act_dim))
    return make_policy(space, hidden, activation, log_std_init, gen)


def _distributions(kind, policy, flat, obs):
    """torch.distributions objects of the policy at flat parameters, independent of trpo's
    closed forms; the policy's KL is the sum of their KLs."""
    if kind in ("categorical", "gaussian"):
        return [_distribution(kind, policy, flat, obs)]
    params, offset = {}, 0
    for name, p in policy.named_parameters():
        params[name[len("net.") :]] = flat[offset : offset + p.numel()].view_as(p)
        offset += p.numel()
    assert offset == flat.numel()
    out = functional_call(policy.net, params, (obs,))
    if kind == "bernoulli":
        return [Independent(Bernoulli(logits=out), 1)]
    return [Categorical(logits=z) for z in out.split(NVEC, dim=-1)]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("activation", ["tanh", "relu", "elu"])
def test_mlp_fisher_equals_explicit_hessian(kind, activation):
    policy = _policy(kind, activation, seed=3)
    obs = torch.randn(30, 3, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    flat = torch.cat([p.detach().reshape(-1) for p in policy.parameters()])
    with torch.no_grad():
        old_dists = _distributions(kind, policy, flat, obs)

    def mean_kl_of(theta):
        new_dists = _distributions(kind, policy, theta, obs)
        return sum(kl_divergence(o, n) for o, n in zip(old_dists, new_dists, strict=True)).mean()

    hessian = torch.autograd.functional.hessian(mean_kl_of, flat)
    fisher = MLPFisher(policy, obs, damping=0.05)
    plain = MLPFisher(policy, obs)
    gen = torch.Generator().manual_seed(5)
    for _ in range(4):
        v = torch.randn(flat.numel(), generator=gen, dtype=torch.float64)
        torch.testing.assert_close(plain(v), hessian @ v, rtol=1e-9, atol=1e-12)
        torch.testing.assert_close(fisher(v), hessian @ v + 0.05 * v, rtol=1e-9, atol=1e-12)
    assert hessian.abs().max() > 1e-3


@pytest.mark.parametrize("kind", ["multi_categorical", "bernoulli"])
def test_closed_form_kl_has_the_explicit_hessian(kind):
    """natural.fisher_vector_product on the policy's own closed-form KL gives the same H as
    the KL of torch.distributions (so its second derivatives are right, not only its values)."""
    policy = _policy(kind, "tanh", seed=6)
    obs = torch.randn(20, 3, generator=torch.Generator().manual_seed(7), dtype=torch.float64)
    params = list(policy.parameters())
    flat = torch.cat([p.detach().reshape(-1) for p in params])
    with torch.no_grad():
        old_dists = _distributions(kind, policy, flat, obs)
        old = tuple(t.clone() for t in policy.dist_params(obs))

    def mean_kl_of(theta):
        new_dists = _distributions(kind, policy, theta, obs)
        return sum(kl_divergence(o, n) for o, n in zip(old_dists, new_dists, strict=True)).mean()

    hessian = torch.autograd.functional.hessian(mean_kl_of, flat)
    fvp = fisher_vector_product(policy.kl(old, policy.dist_params(obs)).mean(), params)
    gen = torch.Generator().manual_seed(8)
    for _ in range(3):
        v = torch.randn(flat.numel(), generator=gen, dtype=torch.float64)
        torch.testing.assert_close(fvp(v), hessian @ v, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("kind", KINDS)
def test_mlp_fisher_matches_autograd_product_in_float32_and_gives_same_cg_direction(kind):
    policy = _initial_policy(kind, "tanh", 0, 17, 6, (64, 64), 0.0)
    obs = torch.randn(512, 17, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        old = tuple(t.clone() for t in policy.dist_params(obs))
    kl = policy.kl(old, policy.dist_params(obs)).mean()
    reference = fisher_vector_product(kl, list(policy.parameters()), 0.1)
    fast = MLPFisher(policy, obs, 0.1)
    n = sum(p.numel() for p in policy.parameters())
    g = torch.randn(n, generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(fast(g), reference(g), rtol=1e-4, atol=1e-6)
    x_fast = conjugate_gradient(fast, g, 10).x
    x_ref = conjugate_gradient(reference, g, 10).x
    torch.testing.assert_close(x_fast, x_ref, rtol=1e-3, atol=1e-4)


def test_mlp_fisher_refuses_other_policies():
    with pytest.raises(TypeError, match="MLP policies"):
        MLPFisher(torch.nn.Linear(2, 2), torch.zeros(1, 2))
