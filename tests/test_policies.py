"""Closed-form log-prob, KL and entropy against torch.distributions; the numpy actor."""

import numpy as np
import pytest
import torch
from gymnasium import spaces
from torch.distributions import Categorical, Independent, Normal, kl_divergence

from trpo.envs import space_info
from trpo.policies import CategoricalPolicy, GaussianPolicy, ValueNetwork, make_policy


def _gen(seed):
    return torch.Generator().manual_seed(seed)


def _space(obs_dim, discrete, act_dim):
    """SpaceInfo of Box(obs_dim) observations and Discrete(act_dim) or Box(act_dim) actions."""
    action = spaces.Discrete(act_dim) if discrete else spaces.Box(-1.0, 1.0, (act_dim,))
    return space_info(spaces.Box(-1.0, 1.0, (obs_dim,)), action)


def _perturb(module, seed, scale=0.7):
    """Move parameters off the near-zero output init so distributions are far from uniform."""
    gen = _gen(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(scale * torch.randn(p.shape, generator=gen))
    return module


def _normal(policy, obs):
    mean = policy.net(obs)
    return Independent(Normal(mean, policy.log_std.exp().expand_as(mean)), 1)


def test_categorical_log_prob_kl_entropy_match_torch_distributions():
    obs = torch.randn(64, 5, generator=_gen(0))
    p = _perturb(CategoricalPolicy(5, 4, (8, 8), "tanh", _gen(1)), 2)
    q = _perturb(CategoricalPolicy(5, 4, (8, 8), "tanh", _gen(3)), 4)
    actions = torch.randint(0, 4, (64,), generator=_gen(5))
    with torch.no_grad():
        dp, dq = p.dist_params(obs), q.dist_params(obs)
        ref_p, ref_q = Categorical(logits=p.net(obs)), Categorical(logits=q.net(obs))
        torch.testing.assert_close(p.log_prob(dp, actions), ref_p.log_prob(actions))
        torch.testing.assert_close(p.entropy(dp), ref_p.entropy())
        torch.testing.assert_close(p.kl(dp, dq), kl_divergence(ref_p, ref_q))
        torch.testing.assert_close(p.kl(dq, dp), kl_divergence(ref_q, ref_p))
        assert float(p.kl(dp, dq).min()) > 0
        torch.testing.assert_close(p.kl(dp, dp), torch.zeros(64), atol=1e-6, rtol=0)
        # Probabilities sum to one.
        torch.testing.assert_close(dp[0].exp().sum(-1), torch.ones(64))


def test_gaussian_log_prob_kl_entropy_match_torch_distributions():
    obs = torch.randn(64, 5, generator=_gen(10))
    p = _perturb(GaussianPolicy(5, 3, (8,), "tanh", -0.5, _gen(11)), 12)
    q = _perturb(GaussianPolicy(5, 3, (8,), "tanh", 0.3, _gen(13)), 14)
    with torch.no_grad():
        dp, dq = p.dist_params(obs), q.dist_params(obs)
        ref_p, ref_q = _normal(p, obs), _normal(q, obs)
        actions = ref_p.sample(torch.Size()) + 0.3
        torch.testing.assert_close(p.log_prob(dp, actions), ref_p.log_prob(actions))
        torch.testing.assert_close(q.log_prob(dq, actions), ref_q.log_prob(actions))
        torch.testing.assert_close(p.entropy(dp), ref_p.entropy())
        torch.testing.assert_close(p.kl(dp, dq), kl_divergence(ref_p, ref_q))
        torch.testing.assert_close(p.kl(dq, dp), kl_divergence(ref_q, ref_p))
        assert float(p.kl(dp, dq).min()) > 0
        # Per-dimension sum: one dimension's KL by the textbook scalar formula.
        m0, s0 = ref_p.base_dist.loc[:, 1], ref_p.base_dist.scale[:, 1]
        m1, s1 = ref_q.base_dist.loc[:, 1], ref_q.base_dist.scale[:, 1]
        one_dim = torch.log(s1 / s0) + (s0**2 + (m0 - m1) ** 2) / (2 * s1**2) - 0.5
        torch.testing.assert_close(kl_divergence(ref_p.base_dist, ref_q.base_dist)[:, 1], one_dim)


def test_gaussian_log_std_is_state_independent_parameter():
    policy = GaussianPolicy(4, 2, (8,), "tanh", -1.25, _gen(0))
    _, log_std = policy.dist_params(torch.randn(10, 4, generator=_gen(1)))
    assert log_std.shape == (10, 2)
    assert torch.all(log_std == -1.25)
    assert any(p is policy.log_std for p in policy.parameters())


def test_make_policy_and_value_network_shapes():
    cat = make_policy(_space(4, True, 3), (8,), "relu", 0.0, _gen(0))
    gau = make_policy(_space(4, False, 2), (8,), "elu", 0.0, _gen(0))
    assert isinstance(cat, CategoricalPolicy) and cat.discrete
    assert isinstance(gau, GaussianPolicy) and not gau.discrete
    value = ValueNetwork(4, (8, 8), "tanh", _gen(0))
    assert value(torch.zeros(7, 4)).shape == (7,)


@pytest.mark.parametrize("activation", ["tanh", "relu", "elu"])
@pytest.mark.parametrize("discrete", [True, False])
def test_numpy_actor_forward_equals_torch(activation, discrete):
    policy = _perturb(make_policy(_space(6, discrete, 3), (16, 8), activation, 0.2, _gen(4)), 5)
    actor = policy.numpy_actor()
    obs = np.random.default_rng(0).normal(size=(50, 6)) * 2.0
    with torch.no_grad():
        expected = policy.net(torch.as_tensor(obs, dtype=torch.float32)).numpy()
    np.testing.assert_allclose(actor.forward(obs), expected, atol=1e-5, rtol=1e-5)


def test_numpy_actor_is_a_frozen_copy():
    policy = GaussianPolicy(3, 2, (4,), "tanh", 0.0, _gen(0))
    actor = policy.numpy_actor()
    obs = np.ones((2, 3))
    out_before = actor.forward(obs).copy()
    with torch.no_grad():
        for p in policy.parameters():
            p.add_(1.0)
    np.testing.assert_array_equal(actor.forward(obs), out_before)
    np.testing.assert_array_equal(actor.std, np.ones(2))


def test_categorical_samples_follow_softmax_probabilities():
    policy = _perturb(CategoricalPolicy(3, 4, (8,), "tanh", _gen(7)), 8, scale=1.5)
    actor = policy.numpy_actor()
    two_states = np.random.default_rng(1).normal(size=(2, 3))
    n = 20_000
    obs = np.repeat(two_states, n, axis=0)  # rows 0..n-1 state 0, then state 1
    samples = actor.sample(obs, np.random.default_rng(123))
    assert samples.shape == (2 * n,)
    assert samples.min() >= 0 and samples.max() <= 3
    with torch.no_grad():
        probs = torch.softmax(policy.net(torch.as_tensor(two_states, dtype=torch.float32)), -1)
    probs = probs.double().numpy()
    assert probs.max() - probs.min() > 0.2  # far from uniform, so the check has teeth
    for s in range(2):
        counts = np.bincount(samples[s * n : (s + 1) * n], minlength=4)
        expected = n * probs[s]
        chi2 = float(((counts - expected) ** 2 / expected).sum())
        assert chi2 < 16.27, (counts, expected)  # 99.9% quantile, 3 degrees of freedom


def test_categorical_sampler_uses_every_action_and_is_seeded():
    policy = CategoricalPolicy(2, 5, (4,), "tanh", _gen(0))  # near uniform
    actor = policy.numpy_actor()
    obs = np.zeros((5000, 2))
    a = actor.sample(obs, np.random.default_rng(9))
    b = actor.sample(obs, np.random.default_rng(9))
    np.testing.assert_array_equal(a, b)
    assert set(np.unique(a)) == {0, 1, 2, 3, 4}


def test_gaussian_samples_have_policy_mean_and_std():
    policy = _perturb(GaussianPolicy(3, 2, (8,), "tanh", 0.0, _gen(20)), 21)
    with torch.no_grad():
        policy.log_std.copy_(torch.tensor([-1.0, 0.5]))
    actor = policy.numpy_actor()
    state = np.random.default_rng(2).normal(size=(1, 3))
    n = 20_000
    samples = actor.sample(np.repeat(state, n, axis=0), np.random.default_rng(5))
    assert samples.shape == (n, 2)
    with torch.no_grad():
        mean = policy.net(torch.as_tensor(state, dtype=torch.float32)).double().numpy()[0]
    std = np.exp([-1.0, 0.5])
    assert np.all(np.abs(samples.mean(0) - mean) < 4 * std / np.sqrt(n))
    np.testing.assert_allclose(samples.std(0), std, rtol=0.03)
    corr = np.corrcoef(samples.T)[0, 1]
    assert abs(corr) < 0.05


def test_deterministic_is_argmax_or_mean():
    obs = np.random.default_rng(3).normal(size=(40, 3))
    x = torch.as_tensor(obs, dtype=torch.float32)
    cat = _perturb(CategoricalPolicy(3, 5, (8,), "relu", _gen(30)), 31, scale=1.5)
    with torch.no_grad():
        expected = torch.argmax(cat.net(x), dim=-1).numpy()
    got = cat.numpy_actor().deterministic(obs)
    np.testing.assert_array_equal(got, expected)
    assert len(np.unique(expected)) > 1
    gau = _perturb(GaussianPolicy(3, 2, (8,), "tanh", 0.0, _gen(32)), 33)
    with torch.no_grad():
        mean = gau.net(x).numpy()
    np.testing.assert_allclose(gau.numpy_actor().deterministic(obs), mean, atol=1e-5)
