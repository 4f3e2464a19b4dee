"""Smoke runs on tiny custom envs for each newer space: MultiDiscrete and MultiBinary actions,
Dict and Tuple observations. Train, checkpoint, resume (exactly), evaluate, replay; same seed,
same records; MultiDiscrete start offsets reach the env."""

from __future__ import annotations

import threading
from typing import ClassVar

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium import spaces

from tests.conftest import tiny_config
from trpo.config import TRPOConfig
from trpo.envs import make_env, make_vector_env
from trpo.evaluate import evaluate, load_policy
from trpo.normalization import ObservationNormalizer
from trpo.policies import MultiCategoricalPolicy
from trpo.rollout import Collector
from trpo.session import TrainingSession
from trpo.store import RunStore
from trpo.trainer import Trainer

EPISODE_STEPS = 8


class _MatchTarget(gym.Env):
    """Observations show a random target; the reward is the fraction of the action that
    matches it. Every action is checked against the action space, so an action the trainer
    forgot to offset or convert fails the step. State is plain numbers (exact resume)."""

    observation_space: gym.Space = spaces.Box(-1.0, 1.0, (3,), np.float32)
    action_space: gym.Space = spaces.MultiDiscrete([3, 2, 4])

    def _new_target(self) -> None:
        space = self.action_space
        self.target = space.start + self.np_random.integers(0, space.nvec)

    def _obs(self):
        scale = np.maximum(self.action_space.nvec - 1, 1)
        return ((self.target - self.action_space.start) / scale).astype(np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self._new_target()
        return self._obs(), {}

    def step(self, action):
        assert self.action_space.contains(action), f"invalid action {action!r}"
        reward = float(np.mean(np.asarray(action) == self.target))
        self._new_target()
        return self._obs(), reward, False, False, {}


class _MatchTargetWithStart(_MatchTarget):
    action_space = spaces.MultiDiscrete([3, 2, 4], start=[1, 0, -2])


class _MatchBits(_MatchTarget):
    action_space = spaces.MultiBinary(3)

    def _new_target(self) -> None:
        self.target = self.np_random.integers(0, 2, size=3)

    def _obs(self):
        return (2.0 * self.target - 1.0).astype(np.float32)


class _DictObservations(gym.Env):
    """Dict observations (a Box and a Discrete goal); Discrete actions, rewarded when they
    name the goal. Renders a small RGB frame for the replay."""

    metadata: ClassVar[dict] = {"render_modes": ["rgb_array"], "render_fps": 30}
    observation_space = spaces.Dict(
        {"noise": spaces.Box(-1.0, 1.0, (2,), np.float32), "goal": spaces.Discrete(3)}
    )
    action_space = spaces.Discrete(3)

    def __init__(self, render_mode=None):
        self.render_mode = render_mode

    def _obs(self):
        self.goal = int(self.np_random.integers(0, 3))
        self.noise = self.np_random.uniform(-1, 1, 2).astype(np.float32)
        return {"noise": self.noise, "goal": self.goal}

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return self._obs(), {}

    def step(self, action):
        assert self.action_space.contains(action), f"invalid action {action!r}"
        reward = 1.0 if int(action) == self.goal else 0.0
        return self._obs(), reward, False, False, {}

    def render(self):
        frame = np.zeros((16, 16, 3), np.uint8)
        frame[:, :, self.goal] = 255
        return frame


class _TupleObservations(gym.Env):
    """Tuple observations (a Box and a Discrete sign); a 1-D Box action rewarded for being
    close to the sign."""

    observation_space = spaces.Tuple((spaces.Box(-1.0, 1.0, (2,), np.float32), spaces.Discrete(2)))
    action_space = spaces.Box(-1.0, 1.0, (1,), np.float32)

    def _obs(self):
        self.sign = int(self.np_random.integers(0, 2))
        self.noise = self.np_random.uniform(-1, 1, 2).astype(np.float32)
        return (self.noise, self.sign)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return self._obs(), {}

    def step(self, action):
        # Box.contains refuses float64 for a float32 Box; the trainer sends float64 (clipped)
        assert action.shape == (1,) and -1.0 <= action[0] <= 1.0, f"invalid action {action!r}"
        reward = -float((action[0] - (2 * self.sign - 1)) ** 2)
        return self._obs(), reward, False, False, {}


ENVS = {
    "TrpoTestMultiDiscrete-v0": _MatchTarget,
    "TrpoTestMultiDiscreteStart-v0": _MatchTargetWithStart,
    "TrpoTestMultiBinary-v0": _MatchBits,
    "TrpoTestDictObs-v0": _DictObservations,
    "TrpoTestTupleObs-v0": _TupleObservations,
}
SMOKE = [
    "TrpoTestMultiDiscrete-v0",
    "TrpoTestMultiBinary-v0",
    "TrpoTestDictObs-v0",
    "TrpoTestTupleObs-v0",
]


@pytest.fixture(scope="module", autouse=True)
def _registered():
    for env_id, cls in ENVS.items():
        gym.register(env_id, entry_point=cls, max_episode_steps=EPISODE_STEPS)
    yield
    for env_id in ENVS:
        gym.registry.pop(env_id, None)


# two iterations of 64 steps (the envs' episodes are EPISODE_STEPS long)
SHORT = dict(
    total_steps=128,
    steps_per_iteration=64,
    vf_epochs=2,
    vf_minibatch=32,
    hidden_sizes=(16,),
    seed=5,
)


TIMING = ("wall_time_s", "iteration_time_s", "steps_per_s")


def comparable(rows: list[dict]) -> list[dict]:
    return [
        {k: v for k, v in row.items() if not (k.startswith("time_") or k in TIMING)} for row in rows
    ]


@pytest.mark.parametrize("env_id", [*SMOKE, "TrpoTestMultiDiscreteStart-v0"])
def test_trains_saves_resumes_and_evaluates(tmp_path, env_id):
    session = TrainingSession.new(tiny_config(env_id, SHORT), RunStore(tmp_path))
    assert session.run() == "finished"
    run = session.run_folder
    records = run.records()
    assert [r.iteration for r in records] == [1, 2]
    assert [r.env_steps for r in records] == [64, 128]
    for r in records:
        for value in (r.value_loss, r.entropy, r.surrogate_before, r.grad_norm):
            assert np.isfinite(value), r
        assert r.cg_residuals and np.all(np.isfinite(r.cg_residuals))
        assert r.kl is None or 0 <= r.kl <= 0.01
    assert sum(r.episodes for r in records) == 128 // EPISODE_STEPS
    assert run.has_checkpoint()

    # the checkpoint loads into a new trainer that continues from iteration 2
    resumed = TrainingSession.resume(str(run.path), total_steps=192)
    assert resumed.trainer.iteration == 2 and resumed.trainer.exact_resume
    assert resumed.run() == "finished"
    assert [r.iteration for r in run.records()] == [1, 2, 3]

    result = evaluate(run.path, episodes=2)
    assert result.lengths == [EPISODE_STEPS, EPISODE_STEPS]
    assert np.all(np.isfinite(result.returns))
    # the evaluated policy is the one trained last, and acts within the env's action space
    loaded = load_policy(run.path)
    assert loaded.iteration == 3
    env, _ = make_env(env_id)
    obs, _ = env.reset(seed=1)
    action = loaded.act(obs)  # float64 for Box, which Box.contains refuses for float32 spaces
    assert env.action_space.contains(np.asarray(action, dtype=env.action_space.dtype))
    env.close()


@pytest.mark.parametrize("env_id", SMOKE)
def test_stop_and_resume_equals_an_uninterrupted_run(tmp_path, env_id):
    config = tiny_config(env_id, SHORT, total_steps=256, normalize_observations=True)
    whole = TrainingSession.new(config, RunStore(tmp_path / "whole"))
    whole.run(None)
    expected = comparable(whole.run_folder.rows())

    stop = threading.Event()
    first = TrainingSession.new(config, RunStore(tmp_path / "split"))
    assert first.run(stop, on_record=lambda r: r.iteration == 2 and stop.set()) == "stopped"
    resumed = TrainingSession.resume(str(first.run_folder.path))
    assert resumed.trainer.exact_resume
    assert resumed.run(None) == "finished"
    got = comparable(first.run_folder.rows())
    assert [r["iteration"] for r in got] == [1, 2, 3]
    assert got == expected


def _train(config: TRPOConfig) -> list[dict]:
    trainer = Trainer(config)
    try:
        return comparable([r.to_dict() for r in trainer.run()])
    finally:
        trainer.close()


@pytest.mark.parametrize("env_id", SMOKE)
def test_same_seed_gives_identical_records(env_id):
    a = _train(tiny_config(env_id, SHORT))
    assert a == _train(tiny_config(env_id, SHORT))
    assert a != _train(tiny_config(env_id, SHORT, seed=6))


def test_multi_discrete_start_offsets_reach_the_env():
    """MultiDiscrete(nvec, start): the policy samples 0..n_k-1, the env gets start_k.. ."""
    envs, info = make_vector_env("TrpoTestMultiDiscreteStart-v0", 2)
    try:
        np.testing.assert_array_equal(info.action_start, [1, 0, -2])
        policy = MultiCategoricalPolicy(3, (3, 2, 4), (4,), "tanh", torch.Generator())
        seen: list[np.ndarray] = []
        step = envs.step

        def recording_step(action):
            seen.append(np.array(action))
            return step(action)

        envs.step = recording_step
        batch = Collector(envs, info, seed=0).collect(
            policy.numpy_actor(), ObservationNormalizer(3, False), 60, np.random.default_rng(0)
        )
    finally:
        envs.close()
    sent = np.concatenate(seen)
    for k, (start, n) in enumerate([(1, 3), (0, 2), (-2, 4)]):
        assert set(sent[:, k]) == set(range(start, start + n))
        assert set(batch.actions[..., k].ravel()) == set(range(n))  # stored without the offset
    np.testing.assert_array_equal(sent, batch.actions.reshape(-1, 3) + np.array([1, 0, -2]))


def test_replay_renders_an_episode_with_flattened_observations(tmp_path):
    from trpo.replay import render_episode

    session = TrainingSession.new(tiny_config("TrpoTestDictObs-v0", SHORT), RunStore(tmp_path))
    session.run()
    replay = render_episode(session.run_folder.path, seed=3, fps=10)
    assert replay.length == EPISODE_STEPS and replay.ended == "truncated"
    assert replay.frames == EPISODE_STEPS + 1 and replay.video[4:8] == b"ftyp"
