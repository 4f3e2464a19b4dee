"""An environment that starts returning NaN/inf part way through: the update is skipped, the run
is marked failed naming the iteration, and the last good checkpoint stays loadable."""

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces

from trpo.config import TRPOConfig
from trpo.evaluate import load_policy
from trpo.session import TrainingSession
from trpo.store import RunStore, load_metrics
from trpo.training_errors import NonFiniteDataError


class GoesBad(gym.Env):
    """Finite for the first `good_steps` steps (counted over the env's life), then NaN/inf."""

    observation_space = spaces.Box(-np.inf, np.inf, (3,), np.float64)
    action_space = spaces.Discrete(2)

    def __init__(self, good_steps: int = 700, what: str = "reward"):
        self.good_steps, self.what, self.count = good_steps, what, 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return np.zeros(3), {}

    def step(self, action):
        self.count += 1
        bad = self.count > self.good_steps
        obs = np.full(3, np.nan if bad and self.what == "obs" else 0.1 * action)
        reward = np.inf if bad and self.what == "reward" else 1.0
        return obs, reward, False, self.count % 50 == 0, {}


@pytest.fixture(params=["reward", "obs"])
def bad_env_id(request):
    env_id = f"TestGoesBad{request.param.title()}-v0"
    gym.register(env_id, entry_point=lambda: GoesBad(700, request.param))
    yield env_id
    gym.registry.pop(env_id, None)


def test_non_finite_env_data_fails_the_run_and_keeps_the_last_checkpoint(tmp_path, bad_env_id):
    config = TRPOConfig(
        env_id=bad_env_id, n_envs=1, steps_per_iteration=256, total_steps=4096, vf_epochs=1
    )
    session = TrainingSession.new(config, RunStore(tmp_path))
    with pytest.raises(NonFiniteDataError):
        session.run(None)
    run = session.run_folder
    status = run.status()
    assert status["state"] == "failed"
    # steps 1..700 are good: iterations 1 and 2 (512 steps) pass, iteration 3 has NaN/inf
    assert "iteration 3" in status["error"] and "non-finite" in status["error"]
    assert list(load_metrics(run.path)["iteration"]) == [1, 2]
    checkpoint = run.load_checkpoint()
    assert checkpoint.meta["iteration"] == 2
    loaded = load_policy(run.path)
    for tensor in loaded.policy.state_dict().values():
        assert np.isfinite(tensor.numpy()).all()
