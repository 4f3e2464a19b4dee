"""Learning: the CartPole preset reaches a mean return >= 195 (marked slow; CI runs it)."""

import pytest

from trpo.evaluate import evaluate
from trpo.presets import preset
from trpo.session import TrainingSession
from trpo.store import RunStore


@pytest.mark.slow
def test_cartpole_preset_learns(tmp_path):
    session = TrainingSession.new(preset("CartPole-v1", seed=0), RunStore(tmp_path))
    assert session.run(None) == "finished"
    result = evaluate(session.run_folder.path, episodes=10)
    assert result.mean_return >= 195, result.returns
