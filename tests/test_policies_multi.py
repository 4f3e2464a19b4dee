"""MultiDiscrete and MultiBinary policies: closed forms against torch.distributions (summed over
components), the numpy sampler's frequencies, deterministic actions."""

import numpy as np
import pytest
import torch
from gymnasium import spaces
from torch.distributions import Bernoulli, Categorical, kl_divergence

from trpo.envs import space_info
from trpo.numpy_actor import NumpyActor
from trpo.policies import BernoulliPolicy, MultiCategoricalPolicy, make_policy

NVEC = (3, 2, 4)
SLICES = [slice(0, 3), slice(3, 5), slice(5, 9)]  # each component's logits


def _gen(seed):
    return torch.Generator().manual_seed(seed)


def _perturb(module, seed, scale=0.9):
    """Move parameters off the near-zero output init so distributions are far from uniform."""
    gen = _gen(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(scale * torch.randn(p.shape, generator=gen))
    return module


def _components(policy, obs):
    """torch.distributions.Categorical per component, from the raw network output."""
    logits = policy.net(obs)
    return [Categorical(logits=logits[:, s]) for s in SLICES]


def test_multi_categorical_log_prob_kl_entropy_match_torch_distributions():
    obs = torch.randn(64, 5, generator=_gen(0))
    p = _perturb(MultiCategoricalPolicy(5, NVEC, (8, 8), "tanh", _gen(1)), 2)
    q = _perturb(MultiCategoricalPolicy(5, NVEC, (8, 8), "tanh", _gen(3)), 4)
    gen = _gen(5)
    actions = torch.stack([torch.randint(0, n, (64,), generator=gen) for n in NVEC], dim=-1)
    with torch.no_grad():
        dp, dq = p.dist_params(obs), q.dist_params(obs)
        ref_p, ref_q = _components(p, obs), _components(q, obs)
        log_prob = sum(d.log_prob(actions[:, k]) for k, d in enumerate(ref_p))
        entropy = sum(d.entropy() for d in ref_p)
        kl_pq = sum(kl_divergence(a, b) for a, b in zip(ref_p, ref_q, strict=True))
        kl_qp = sum(kl_divergence(b, a) for a, b in zip(ref_p, ref_q, strict=True))
        assert dp[0].shape == (64, sum(NVEC))
        torch.testing.assert_close(p.log_prob(dp, actions), log_prob)
        torch.testing.assert_close(p.entropy(dp), entropy)
        torch.testing.assert_close(p.kl(dp, dq), kl_pq)
        torch.testing.assert_close(p.kl(dq, dp), kl_qp)
        assert float(p.kl(dp, dq).min()) > 0
        torch.testing.assert_close(p.kl(dp, dp), torch.zeros(64), atol=1e-6, rtol=0)
        for s in SLICES:  # each component's probabilities sum to one
            torch.testing.assert_close(dp[0][:, s].exp().sum(-1), torch.ones(64))
        # far from uniform, so a mix-up of components would show
        assert float((entropy - sum(np.log(NVEC))).abs().min()) > 0.05


def test_multi_categorical_log_prob_picks_each_components_own_logit():
    """A component's action indexes its own slice: changing a_1 changes only term 1."""
    p = _perturb(MultiCategoricalPolicy(2, NVEC, (4,), "tanh", _gen(6)), 7)
    obs = torch.randn(1, 2, generator=_gen(8))
    with torch.no_grad():
        params = p.dist_params(obs)
        a = torch.tensor([[2, 0, 3]])
        b = torch.tensor([[2, 1, 3]])
        diff = p.log_prob(params, b) - p.log_prob(params, a)
        expected = params[0][0, 3 + 1] - params[0][0, 3 + 0]
    torch.testing.assert_close(diff, expected.reshape(1))


def test_bernoulli_log_prob_kl_entropy_match_torch_distributions():
    obs = torch.randn(64, 5, generator=_gen(10))
    p = _perturb(BernoulliPolicy(5, 3, (8, 8), "tanh", _gen(11)), 12)
    q = _perturb(BernoulliPolicy(5, 3, (8, 8), "tanh", _gen(13)), 14)
    actions = torch.randint(0, 2, (64, 3), generator=_gen(15))
    with torch.no_grad():
        dp, dq = p.dist_params(obs), q.dist_params(obs)
        ref_p, ref_q = Bernoulli(logits=p.net(obs)), Bernoulli(logits=q.net(obs))
        torch.testing.assert_close(p.log_prob(dp, actions), ref_p.log_prob(actions.float()).sum(-1))
        torch.testing.assert_close(p.entropy(dp), ref_p.entropy().sum(-1))
        torch.testing.assert_close(p.kl(dp, dq), kl_divergence(ref_p, ref_q).sum(-1))
        torch.testing.assert_close(p.kl(dq, dp), kl_divergence(ref_q, ref_p).sum(-1))
        assert float(p.kl(dp, dq).min()) > 0
        torch.testing.assert_close(p.kl(dp, dp), torch.zeros(64), atol=1e-6, rtol=0)
        assert float((ref_p.probs - 0.5).abs().max()) > 0.3  # far from fair coins


def test_bernoulli_closed_forms_stay_finite_for_saturated_logits():
    policy = BernoulliPolicy(1, 2, (2,), "tanh", _gen(0))
    z = torch.tensor([[60.0, -60.0], [-80.0, 80.0]], dtype=torch.float64)
    actions = torch.tensor([[1, 0], [1, 1]])
    log_prob = policy.log_prob((z,), actions)
    torch.testing.assert_close(log_prob, torch.tensor([0.0, -80.0], dtype=torch.float64))
    entropy = policy.entropy((z,))
    assert torch.isfinite(entropy).all() and float(entropy.max()) < 1e-20
    kl = policy.kl((z,), (-z,))
    torch.testing.assert_close(kl, torch.tensor([120.0, 160.0], dtype=torch.float64))


def _space(action_space, obs_dim=4):
    return space_info(spaces.Box(-1.0, 1.0, (obs_dim,)), action_space)


def test_make_policy_builds_one_policy_per_action_kind():
    multi = make_policy(_space(spaces.MultiDiscrete(NVEC)), (8,), "tanh", 0.0, _gen(0))
    bits = make_policy(_space(spaces.MultiBinary(5)), (8,), "tanh", 0.0, _gen(0))
    assert isinstance(multi, MultiCategoricalPolicy) and multi.nvec == NVEC
    assert multi.net[-1].out_features == sum(NVEC)
    assert isinstance(bits, BernoulliPolicy) and bits.net[-1].out_features == 5
    # checkpoints hold the network only (the component offsets follow from nvec)
    assert set(multi.state_dict()) == {k for k, _ in multi.named_parameters()}


@pytest.mark.parametrize("activation", ["tanh", "relu", "elu"])
@pytest.mark.parametrize("kind", ["multi_categorical", "bernoulli"])
def test_numpy_actor_forward_equals_torch(activation, kind):
    if kind == "multi_categorical":
        policy = MultiCategoricalPolicy(6, NVEC, (16, 8), activation, _gen(4))
    else:
        policy = BernoulliPolicy(6, 3, (16, 8), activation, _gen(4))
    actor = _perturb(policy, 5).numpy_actor()
    obs = np.random.default_rng(0).normal(size=(50, 6)) * 2.0
    with torch.no_grad():
        expected = policy.net(torch.as_tensor(obs, dtype=torch.float32)).numpy()
    np.testing.assert_allclose(actor.forward(obs), expected, atol=1e-5, rtol=1e-5)


def test_multi_categorical_samples_follow_each_components_softmax_independently():
    policy = _perturb(MultiCategoricalPolicy(3, NVEC, (8,), "tanh", _gen(7)), 8, scale=1.5)
    actor = policy.numpy_actor()
    two_states = np.random.default_rng(1).normal(size=(2, 3))
    n = 20_000
    obs = np.repeat(two_states, n, axis=0)  # rows 0..n-1 state 0, then state 1
    samples = actor.sample(obs, np.random.default_rng(123))
    assert samples.shape == (2 * n, 3) and samples.dtype == np.int64
    with torch.no_grad():
        log_probs = policy.dist_params(torch.as_tensor(two_states, dtype=torch.float32))[0]
    probs = log_probs.exp().double().numpy()
    for s in range(2):
        rows = samples[s * n : (s + 1) * n]
        for k, (size, sl) in enumerate(zip(NVEC, SLICES, strict=True)):
            p = probs[s, sl]
            assert p.max() - p.min() > 0.1  # far from uniform, so the check has teeth
            counts = np.bincount(rows[:, k], minlength=size)
            assert counts.size == size  # no action outside 0..n_k-1
            chi2 = float(((counts - n * p) ** 2 / (n * p)).sum())
            assert chi2 < {3: 13.82, 2: 10.83, 4: 16.27}[size], (s, k, counts, n * p)
        # components are independent: the joint of components 0 and 2 is the product
        joint = np.bincount(rows[:, 0] * 4 + rows[:, 2], minlength=12)
        expected = n * np.outer(probs[s, SLICES[0]], probs[s, SLICES[2]]).reshape(-1)
        chi2 = float(((joint - expected) ** 2 / expected).sum())
        assert chi2 < 31.26, (joint, expected)  # 99.9% quantile, 11 degrees of freedom


def test_bernoulli_samples_follow_sigmoid_of_each_logit_independently():
    policy = _perturb(BernoulliPolicy(3, 3, (8,), "tanh", _gen(20)), 21, scale=1.5)
    actor = policy.numpy_actor()
    state = np.random.default_rng(2).normal(size=(1, 3))
    n = 40_000
    samples = actor.sample(np.repeat(state, n, axis=0), np.random.default_rng(5))
    assert samples.shape == (n, 3) and set(np.unique(samples)) == {0, 1}
    with torch.no_grad():
        p = torch.sigmoid(policy.net(torch.as_tensor(state, dtype=torch.float32)))
    p = p.double().numpy()[0]
    assert np.abs(p - 0.5).max() > 0.2  # far from fair coins
    freq = samples.mean(0)
    assert np.all(np.abs(freq - p) < 4 * np.sqrt(p * (1 - p) / n)), (freq, p)
    both = float((samples[:, 0] * samples[:, 1]).mean())
    assert abs(both - p[0] * p[1]) < 4 * np.sqrt(p[0] * p[1] / n)  # bits 0 and 1 independent


def test_samplers_are_seeded_and_use_every_value():
    multi = MultiCategoricalPolicy(2, NVEC, (4,), "tanh", _gen(0)).numpy_actor()  # near uniform
    bits = BernoulliPolicy(2, 3, (4,), "tanh", _gen(0)).numpy_actor()
    obs = np.zeros((5000, 2))
    for actor in (multi, bits):
        a = actor.sample(obs, np.random.default_rng(9))
        np.testing.assert_array_equal(a, actor.sample(obs, np.random.default_rng(9)))
        assert not np.array_equal(a, actor.sample(obs, np.random.default_rng(10)))
    a = multi.sample(obs, np.random.default_rng(9))
    for k, size in enumerate(NVEC):
        assert set(np.unique(a[:, k])) == set(range(size))


def test_sample_with_uses_the_pre_drawn_noise():
    """Bernoulli: bit j is 1 exactly when u_j < sigmoid(z_j); multi: argmax of z + g per slice."""
    bits = _perturb(BernoulliPolicy(2, 3, (4,), "tanh", _gen(1)), 2).numpy_actor()
    obs = np.random.default_rng(3).normal(size=(4, 2))
    p = 1.0 / (1.0 + np.exp(-bits.forward(obs)))
    np.testing.assert_array_equal(bits.sample_with(obs, p - 1e-9), np.ones((4, 3)))
    np.testing.assert_array_equal(bits.sample_with(obs, p + 1e-9), np.zeros((4, 3)))
    multi = MultiCategoricalPolicy(2, NVEC, (4,), "tanh", _gen(4)).numpy_actor()
    noise = np.zeros((4, sum(NVEC)))
    noise[:, [2, 3, 5]] = 100.0  # pushes choice 2 of component 0, 0 of 1, 0 of 2
    np.testing.assert_array_equal(multi.sample_with(obs, noise), np.tile([2, 0, 0], (4, 1)))


def test_deterministic_is_argmax_per_component_or_positive_logit():
    obs = np.random.default_rng(3).normal(size=(40, 3))
    x = torch.as_tensor(obs, dtype=torch.float32)
    multi = _perturb(MultiCategoricalPolicy(3, NVEC, (8,), "relu", _gen(30)), 31, scale=1.5)
    with torch.no_grad():
        logits = multi.net(x)
    expected = torch.stack([logits[:, s].argmax(-1) for s in SLICES], dim=-1).numpy()
    got = multi.numpy_actor().deterministic(obs)
    np.testing.assert_array_equal(got, expected)
    assert all(len(np.unique(expected[:, k])) > 1 for k in range(3))
    bits = _perturb(BernoulliPolicy(3, 4, (8,), "tanh", _gen(32)), 33)
    with torch.no_grad():
        expected = (bits.net(x) > 0).long().numpy()
    got = bits.numpy_actor().deterministic(obs)
    np.testing.assert_array_equal(got, expected)
    assert 0 < expected.mean() < 1


def test_numpy_actor_refuses_inconsistent_heads():
    net = MultiCategoricalPolicy(2, NVEC, (4,), "tanh", _gen(0)).net
    with pytest.raises(ValueError, match="add up"):
        NumpyActor(net, "tanh", "multi_categorical", nvec=(3, 2))
    with pytest.raises(ValueError, match="log_std"):
        NumpyActor(net, "tanh", "gaussian")
    with pytest.raises(ValueError, match="nvec"):
        MultiCategoricalPolicy(2, (3, 0), (4,), "tanh", _gen(0))
