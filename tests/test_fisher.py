"""The autograd-free Fisher-vector product against the explicit Hessian of the mean KL."""

import pytest
import torch

from trpo.fisher import MLPFisher
from trpo.natural import conjugate_gradient, fisher_vector_product
from trpo.policies import make_policy

from .test_natural import _distribution


def _policy(discrete, activation, seed):
    gen = torch.Generator().manual_seed(seed)
    policy = make_policy(3, discrete, 3, (5, 4), activation, -0.4, gen).double()
    with torch.no_grad():  # move off the near-zero output init so every parameter matters
        for p in policy.parameters():
            p.add_(0.5 * torch.randn(p.shape, generator=gen, dtype=p.dtype))
    return policy


@pytest.mark.parametrize("discrete", [True, False])
@pytest.mark.parametrize("activation", ["tanh", "relu", "elu"])
def test_mlp_fisher_equals_explicit_hessian(discrete, activation):
    kind = "categorical" if discrete else "gaussian"
    policy = _policy(discrete, activation, seed=3)
    obs = torch.randn(30, 3, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    flat = torch.cat([p.detach().reshape(-1) for p in policy.parameters()])
    with torch.no_grad():
        old_dist = _distribution(kind, policy, flat, obs)

    def mean_kl_of(theta):
        new_dist = _distribution(kind, policy, theta, obs)
        return torch.distributions.kl_divergence(old_dist, new_dist).mean()

    hessian = torch.autograd.functional.hessian(mean_kl_of, flat)
    fisher = MLPFisher(policy, obs, damping=0.05)
    plain = MLPFisher(policy, obs)
    gen = torch.Generator().manual_seed(5)
    for _ in range(4):
        v = torch.randn(flat.numel(), generator=gen, dtype=torch.float64)
        torch.testing.assert_close(plain(v), hessian @ v, rtol=1e-9, atol=1e-12)
        torch.testing.assert_close(fisher(v), hessian @ v + 0.05 * v, rtol=1e-9, atol=1e-12)
    assert hessian.abs().max() > 1e-3


def test_mlp_fisher_matches_autograd_product_in_float32_and_gives_same_cg_direction():
    policy = make_policy(17, False, 6, (64, 64), "tanh", 0.0, torch.Generator().manual_seed(0))
    obs = torch.randn(512, 17, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        old = tuple(t.clone() for t in policy.dist_params(obs))
    kl = policy.kl(old, policy.dist_params(obs)).mean()
    reference = fisher_vector_product(kl, list(policy.parameters()), 0.1)
    fast = MLPFisher(policy, obs, 0.1)
    g = torch.randn(sum(p.numel() for p in policy.parameters()))
    torch.testing.assert_close(fast(g), reference(g), rtol=1e-4, atol=1e-6)
    x_fast = conjugate_gradient(fast, g, 10).x
    x_ref = conjugate_gradient(reference, g, 10).x
    torch.testing.assert_close(x_fast, x_ref, rtol=1e-3, atol=1e-4)


def test_mlp_fisher_refuses_other_policies():
    with pytest.raises(TypeError, match="MLP policies"):
        MLPFisher(torch.nn.Linear(2, 2), torch.zeros(1, 2))
