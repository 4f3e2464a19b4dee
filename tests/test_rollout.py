"""Rollout collection on a scripted env: truncation vs termination, final observations, and the
bootstrap the trainer's advantages take at a truncation."""

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium import spaces

from trpo.config import TRPOConfig
from trpo.envs import make_vector_env
from trpo.normalization import ObservationNormalizer
from trpo.policies import CategoricalPolicy
from trpo.rollout import Collector
from trpo.trainer import Trainer

ENV_ID = "TrpoTestScriptedEpisodes-v0"
TIME_LIMIT = 5
# Natural episode lengths, cycled. With the time limit of 5: 8 and 6 are truncated at 5,
# 5 ends terminated and truncated at once, the others terminate.
LENGTHS = (3, 8, 2, 5, 1, 6)


class ScriptedEpisodes(gym.Env):
    """Observation [base, episode, k]: base is the reset seed, k the step within the episode."""

    observation_space = spaces.Box(-np.inf, np.inf, (3,), dtype=np.float32)
    action_space = spaces.Discrete(2)

    def __init__(self):
        self.base, self.episode, self.k = 0, -1, 0

    def _obs(self):
        return np.array([self.base, self.episode, self.k], dtype=np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        if seed is not None:
            self.base, self.episode = seed, 0
        else:
            self.episode += 1
        self.k = 0
        return self._obs(), {}

    def step(self, action):
        self.k += 1
        reward = _reward(self.base, self.episode, self.k)
        terminated = self.k >= LENGTHS[(self.episode + self.base) % len(LENGTHS)]
        return self._obs(), reward, terminated, False, {}


def _reward(base, episode, k):
    return float(k + 0.5 * episode + 0.25 * base)


if ENV_ID not in gym.registry:
    gym.register(ENV_ID, entry_point=ScriptedEpisodes, max_episode_steps=TIME_LIMIT)


def _reference(seed, n_envs, steps):
    """What the env does, step by step, worked out without gymnasium: per env a list of
    dicts with obs, reward, the real next obs, terminated, truncated, and finished episodes."""
    out = []
    episodes = []  # (t, env, return, length)
    for i in range(n_envs):
        base, episode, k, ret = seed + i, 0, 0, 0.0
        rows = []
        for t in range(steps):
            obs = [base, episode, k]
            k += 1
            reward = _reward(base, episode, k)
            ret += reward
            terminated = k >= LENGTHS[(episode + base) % len(LENGTHS)]
            truncated = k >= TIME_LIMIT
            rows.append(
                dict(
                    obs=obs,
                    reward=reward,
                    next_obs=[base, episode, k],
                    terminated=terminated,
                    truncated=truncated,
                )
            )
            if terminated or truncated:
                episodes.append((t, i, ret, k))
                episode, k, ret = episode + 1, 0, 0.0
        out.append(rows)
    episodes.sort(key=lambda e: (e[0], e[1]))
    return out, episodes


def _collector(seed, n_envs=2):
    envs, space = make_vector_env(ENV_ID, n_envs)
    actor = CategoricalPolicy(3, 2, (4,), "tanh", torch.Generator().manual_seed(0)).numpy_actor()
    return Collector(envs, space, seed=seed), actor, ObservationNormalizer(3, enabled=False)


def test_reference_covers_every_kind_of_episode_end():
    rows, _ = _reference(0, 2, 24)
    kinds = {(r["terminated"], r["truncated"]) for env in rows for r in env}
    assert kinds == {(False, False), (True, False), (False, True), (True, True)}


def test_collector_records_the_real_last_observation_and_episode_ends():
    T, seed = 12, 0
    collector, actor, normalize = _collector(seed)
    try:
        first = collector.collect(actor, normalize, T, np.random.default_rng(0))
        second = collector.collect(actor, normalize, T, np.random.default_rng(1))
    finally:
        collector.envs.close()
    rows, episodes = _reference(seed, 2, 2 * T)
    for b, batch in enumerate((first, second)):
        assert batch.size == 2 * T
        for i in range(2):
            for t in range(T):
                ref = rows[i][b * T + t]
                where = f"batch {b}, t={t}, env {i}"
                np.testing.assert_array_equal(batch.raw_obs[t, i], ref["obs"], err_msg=where)
                np.testing.assert_array_equal(batch.obs[t, i], ref["obs"], err_msg=where)
                np.testing.assert_array_equal(batch.next_obs[t, i], ref["next_obs"], err_msg=where)
                assert batch.rewards[t, i] == ref["reward"], where
                assert batch.terminated[t, i] == ref["terminated"], where
                assert batch.episode_end[t, i] == (ref["terminated"] or ref["truncated"]), where
                if batch.episode_end[t, i] and t + 1 < T:
                    # the next step starts from the reset observation, k = 0
                    assert batch.raw_obs[t + 1, i][2] == 0, where
                    assert batch.raw_obs[t + 1, i][1] == ref["next_obs"][1] + 1, where
                if ref["truncated"] and not ref["terminated"]:
                    assert not batch.terminated[t, i] and batch.episode_end[t, i]
                    assert batch.next_obs[t, i][2] == TIME_LIMIT  # not the reset obs
    # Finished episodes, in the order they ended, split over the two batches.
    first_eps = [(r, n) for t, _, r, n in episodes if t < T]
    second_eps = [(r, n) for t, _, r, n in episodes if t >= T]
    assert list(zip(first.episode_returns, first.episode_lengths, strict=True)) == first_eps
    assert list(zip(second.episode_returns, second.episode_lengths, strict=True)) == second_eps
    # Some episode of the second batch started in the first one (running sums carried over).
    assert any(n > t - T + 1 for t, _, _, n in episodes if t >= T and n > 1)


def _trainer(seed=0):
    config = TRPOConfig(
        env_id=ENV_ID,
        n_envs=2,
        steps_per_iteration=24,
        total_steps=48,
        hidden_sizes=(8,),
        normalize_advantages=False,
        normalize_rewards=False,
        normalize_observations=False,
        gamma=0.9,
        gae_lambda=0.8,
        seed=seed,
    )
    return Trainer(config)


def _values(trainer, states):
    with torch.no_grad():
        return trainer.value(torch.tensor(states, dtype=torch.float32)).double().numpy()


def _reference_advantages(trainer, rows, gamma, lam, bootstrap_from_reset=False):
    """A_t = sum_l (gamma lam)^l delta_{t+l} within each episode piece, one env at a time.

    A truncation (and the batch's last step) bootstraps from V of the real next state;
    with bootstrap_from_reset the wrong state, the reset observation, is used instead.
    """
    T = len(rows[0])
    adv = np.zeros((T, len(rows)))
    values = np.zeros((T, len(rows)))
    for i, env_rows in enumerate(rows):
        v = _values(trainer, [r["obs"] for r in env_rows])
        values[:, i] = v
        v_next = _values(trainer, [r["next_obs"] for r in env_rows])
        if bootstrap_from_reset:
            resets = [[r["obs"][0], r["obs"][1] + 1, 0] for r in env_rows]
            v_reset = _values(trainer, resets)
            for t, r in enumerate(env_rows):
                if r["truncated"]:
                    v_next[t] = v_reset[t]
        deltas = []
        for t, r in enumerate(env_rows):
            bootstrap = 0.0 if r["terminated"] else gamma * v_next[t]
            deltas.append(r["reward"] + bootstrap - v[t])
        for t in range(T):
            total, weight = 0.0, 1.0
            for k in range(t, T):
                total += weight * deltas[k]
                if env_rows[k]["terminated"] or env_rows[k]["truncated"]:
                    break
                weight *= gamma * lam
            adv[t, i] = total
    return adv, values


def test_trainer_advantages_bootstrap_truncation_from_the_final_state():
    trainer = _trainer()
    try:
        T = 12
        batch = trainer.collector.collect(
            trainer.policy.numpy_actor(), trainer.obs_normalizer, T, trainer.rng
        )
        data = trainer._prepare(batch)
        rows, _ = _reference(trainer.config.seed, 2, T)
        gamma, lam = trainer.config.gamma, trainer.config.gae_lambda
        expected, v = _reference_advantages(trainer, rows, gamma, lam)
        got = data.advantages.numpy().reshape(T, 2)
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
        returns = data.returns.numpy().reshape(T, 2)
        np.testing.assert_allclose(returns, expected + v, rtol=1e-5, atol=1e-5)
        # Bootstrapping a truncation from V(reset obs) would give visibly different advantages,
        # so the comparison above does tell the two apart.
        wrong, _ = _reference_advantages(trainer, rows, gamma, lam, bootstrap_from_reset=True)
        truncation = np.array(
            [[r["truncated"] and not r["terminated"] for r in env] for env in rows]
        ).T
        assert truncation.any()
        assert np.abs(wrong - expected)[truncation].min() > 1e-3
        assert not np.allclose(got, wrong, rtol=1e-5, atol=1e-5)
    finally:
        trainer.close()


def test_trainer_runs_an_iteration_on_the_scripted_env():
    trainer = _trainer(seed=3)
    try:
        record = trainer.step()
        _, episodes = _reference(3, 2, 12)
        assert record.episodes == len(episodes)
        assert record.return_mean == pytest.approx(np.mean([r for _, _, r, _ in episodes]))
        assert record.length_mean == pytest.approx(np.mean([n for _, _, _, n in episodes]))
        assert record.env_steps == 24
    finally:
        trainer.close()


def test_discrete_action_space_with_start_offset_gets_valid_actions():
    """Discrete(n, start=s): the policy samples 0..n-1, the env must receive s..s+n-1."""
    seen = []

    class StartOne(gym.Env):
        observation_space = spaces.Box(-1, 1, (2,), np.float32)
        action_space = spaces.Discrete(3, start=1)

        def reset(self, *, seed=None, options=None):
            super().reset(seed=seed)
            return np.zeros(2, np.float32), {}

        def step(self, action):
            assert self.action_space.contains(action), f"invalid action {action!r}"
            seen.append(int(action))
            return np.zeros(2, np.float32), 0.0, False, False, {}

    gym.register("TestStartOne-v0", entry_point=StartOne, max_episode_steps=10)
    try:
        envs, info = make_vector_env("TestStartOne-v0", 1)
        actor = CategoricalPolicy(2, 3, (4,), "tanh", torch.Generator().manual_seed(0))
        Collector(envs, info, seed=0).collect(
            actor.numpy_actor(), ObservationNormalizer(2, False), 60, np.random.default_rng(0)
        )
        envs.close()
    finally:
        gym.registry.pop("TestStartOne-v0", None)
    assert set(seen) == {1, 2, 3}
