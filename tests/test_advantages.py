"""GAE and rewards-to-go against hand-written single-env references."""

import numpy as np
import pytest

from trpo.advantages import gae, rewards_to_go

GAMMA = 0.97


def _random_batch(seed, T=40, N=3):
    """Rewards, V(s_t), V(s_{t+1}) and a mix of terminations and truncations."""
    rng = np.random.default_rng(seed)
    rewards = rng.normal(size=(T, N))
    values = rng.normal(size=(T, N))
    next_values = rng.normal(size=(T, N))
    terminated = np.zeros((T, N), dtype=bool)
    truncated = np.zeros((T, N), dtype=bool)
    # Hand-placed ends so every kind occurs, in every env.
    terminated[5, 0] = terminated[17, 1] = terminated[30, 2] = True
    truncated[11, 0] = truncated[3, 1] = truncated[22, 2] = True
    terminated[25, 0] = truncated[25, 0] = True  # both: a termination
    terminated[T - 1, 1] = True  # the batch ends on a termination
    truncated[T - 1, 2] = True  # ... and on a truncation
    # A few random ones on top.
    terminated |= rng.random((T, N)) < 0.04
    truncated |= rng.random((T, N)) < 0.04
    # Within an episode the next state is the next step's state, so V(s_{t+1}) is the next
    # step's value; after an episode end it is V(s_final), a state the batch holds nowhere else.
    inside = ~(terminated | truncated)[:-1]
    next_values[:-1][inside] = values[1:][inside]
    return rewards, values, next_values, terminated, truncated


def _episodes(end_column):
    """(start, stop) index pairs of the pieces of one env's column, split after each end."""
    pieces, start = [], 0
    for t, ended in enumerate(end_column):
        if ended:
            pieces.append((start, t + 1))
            start = t + 1
    if start < len(end_column):
        pieces.append((start, len(end_column)))
    return pieces


def _reference_lambda_one(rewards, values, next_values, terminated, truncated, gamma):
    """A_t = G_t - V(s_t), G_t summed forward over each episode piece of one env at a time."""
    T, N = rewards.shape
    adv = np.zeros((T, N))
    for n in range(N):
        for start, stop in _episodes(terminated[:, n] | truncated[:, n]):
            last = stop - 1
            # The piece's value after its last step: nothing after a termination, otherwise
            # V of the real next state (a truncation, or the end of the batch).
            tail = 0.0 if terminated[last, n] else next_values[last, n]
            for t in range(start, stop):
                g = 0.0
                for k in range(t, stop):
                    g += gamma ** (k - t) * rewards[k, n]
                g += gamma ** (stop - t) * tail
                adv[t, n] = g - values[t, n]
    return adv


def _reference_naive(rewards, values, next_values, terminated, truncated, gamma, lam):
    """A_t = sum_l (gamma lam)^l delta_{t+l} within the episode piece, O(T^2)."""
    T, N = rewards.shape
    adv = np.zeros((T, N))
    for n in range(N):
        for start, stop in _episodes(terminated[:, n] | truncated[:, n]):
            deltas = []
            for k in range(start, stop):
                bootstrap = 0.0 if terminated[k, n] else gamma * next_values[k, n]
                deltas.append(rewards[k, n] + bootstrap - values[k, n])
            for t in range(start, stop):
                adv[t, n] = sum(
                    (gamma * lam) ** (k - t) * deltas[k - start] for k in range(t, stop)
                )
    return adv


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_gae_lambda_one_is_reward_to_go_minus_value(seed):
    r, v, nv, term, trunc = _random_batch(seed)
    adv, ret = gae(r, v, nv, term, term | trunc, GAMMA, 1.0)
    expected = _reference_lambda_one(r, v, nv, term, trunc, GAMMA)
    np.testing.assert_allclose(adv, expected, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(ret, expected + v, rtol=1e-10, atol=1e-10)


def test_gae_lambda_one_matches_rewards_to_go_on_one_episode():
    r, v, nv, term, trunc = _random_batch(5)
    adv, _ = gae(r, v, nv, term, term | trunc, GAMMA, 1.0)
    # Env 0: steps 6..11 form one episode piece that ends on the truncation at t = 11.
    assert trunc[11, 0] and not term[6:12, 0].any() and not trunc[6:11, 0].any()
    assert term[5, 0] or trunc[5, 0]
    g = rewards_to_go(r[6:12, 0], GAMMA, bootstrap=nv[11, 0])
    np.testing.assert_allclose(adv[6:12, 0], g - v[6:12, 0], rtol=1e-10, atol=1e-10)


def test_gae_truncation_bootstraps_and_termination_does_not():
    # One env, two one-step episodes: a truncation then a termination.
    r = np.array([[1.0], [2.0]])
    v = np.array([[0.5], [0.25]])
    nv = np.array([[10.0], [20.0]])
    term = np.array([[False], [True]])
    end = np.array([[True], [True]])
    adv, _ = gae(r, v, nv, term, end, 0.9, 0.95)
    assert adv[0, 0] == pytest.approx(1.0 + 0.9 * 10.0 - 0.5)
    assert adv[1, 0] == pytest.approx(2.0 - 0.25)


def test_gae_lambda_zero_is_one_step_td_error():
    r, v, nv, term, trunc = _random_batch(3)
    adv, ret = gae(r, v, nv, term, term | trunc, GAMMA, 0.0)
    T, N = r.shape
    for t in range(T):
        for n in range(N):
            target = r[t, n] + (0.0 if term[t, n] else GAMMA * nv[t, n])
            assert adv[t, n] == pytest.approx(target - v[t, n], abs=1e-12)
            assert ret[t, n] == pytest.approx(target, abs=1e-12)


@pytest.mark.parametrize("lam", [0.3, 0.8, 0.95])
def test_gae_general_lambda_matches_naive_sum(lam):
    r, v, nv, term, trunc = _random_batch(int(lam * 100))
    adv, ret = gae(r, v, nv, term, term | trunc, GAMMA, lam)
    expected = _reference_naive(r, v, nv, term, trunc, GAMMA, lam)
    np.testing.assert_allclose(adv, expected, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(ret - v, expected, rtol=1e-10, atol=1e-10)


def test_gae_terminated_and_truncated_is_a_termination():
    # Two steps of one episode; the second is both terminated and truncated.
    r = np.array([[1.0], [1.0]])
    v = np.array([[0.0], [0.0]])
    nv = np.array([[0.0], [100.0]])  # V(s_final) must be ignored at the termination
    term = np.array([[False], [True]])
    trunc = np.array([[False], [True]])
    adv, _ = gae(r, v, nv, term, term | trunc, 0.9, 1.0)
    assert adv[1, 0] == pytest.approx(1.0)
    assert adv[0, 0] == pytest.approx(1.0 + 0.9 * 1.0)
    # The same with truncation only does bootstrap (so the test above can tell them apart).
    adv_trunc, _ = gae(r, v, nv, np.zeros_like(term), trunc, 0.9, 1.0)
    assert adv_trunc[1, 0] == pytest.approx(1.0 + 0.9 * 100.0)


def test_gae_does_not_leak_across_envs_or_episodes():
    r, v, nv, term, trunc = _random_batch(7)
    adv, _ = gae(r, v, nv, term, term | trunc, GAMMA, 0.9)
    # Changing env 1's rewards after its end at t = 3 leaves every earlier step and every
    # other env unchanged.
    r2 = r.copy()
    r2[4:, 1] += 100.0
    adv2, _ = gae(r2, v, nv, term, term | trunc, GAMMA, 0.9)
    np.testing.assert_array_equal(adv2[:4, 1], adv[:4, 1])
    np.testing.assert_array_equal(adv2[:, [0, 2]], adv[:, [0, 2]])
    assert not np.allclose(adv2[4:, 1], adv[4:, 1])


def test_rewards_to_go_by_hand():
    # gamma = 0.5: G_2 = 3 + 0.5 * 8 = 7, G_1 = 2 + 3.5 = 5.5, G_0 = 1 + 2.75 = 3.75
    np.testing.assert_allclose(
        rewards_to_go(np.array([1.0, 2.0, 3.0]), 0.5, bootstrap=8.0), [3.75, 5.5, 7.0]
    )
    # no bootstrap: G = [1 + 0.5 * (2 + 0.5 * 3), 2 + 1.5, 3]
    np.testing.assert_allclose(rewards_to_go([1.0, 2.0, 3.0], 0.5), [2.75, 3.5, 3.0])
    np.testing.assert_allclose(rewards_to_go([4.0, -1.0], 1.0), [3.0, -1.0])
    assert rewards_to_go([], 0.9).shape == (0,)
