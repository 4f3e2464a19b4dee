"""torch's thread count is process-wide: the Trainer leaves it alone, and the owners of
training processes (CLI train, trainer process, sweep worker) set config.torch_threads."""

import pytest
import torch

from tests.conftest import tiny_config
from trpo import cli, sweep, trainer_process
from trpo.config import TRPOConfig
from trpo.store import RunStore
from trpo.trainer import Trainer

# smaller than the shared tiny config: these tests only count threads
SMALL = dict(total_steps=256, steps_per_iteration=128, vf_minibatch=64, cg_iters=3,
             hidden_sizes=(8,), seed=2)  # fmt: skip


def tiny(**overrides) -> TRPOConfig:
    return tiny_config(SMALL, **overrides)


@pytest.fixture
def threads():
    """Restores this process's thread count after the test."""
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_a_trainer_keeps_its_callers_thread_count(threads):
    torch.set_num_threads(2)
    trainer = Trainer(tiny(torch_threads=1, normalize_observations=True))  # with its warm-up
    try:
        trainer.step()
        Trainer(tiny(torch_threads=3, normalize_observations=True), trainer.state()).close()
    finally:
        trainer.close()
    assert torch.get_num_threads() == 2


def test_cli_train_uses_the_configs_threads(threads, tmp_path):
    torch.set_num_threads(1)
    args = ["--env", "CartPole-v1", "--total-steps", "128", "--steps-per-iteration", "128"]
    assert (
        cli.main(["train", *args, "--torch-threads", "2", "--quiet", "--runs-dir", str(tmp_path)])
        == 0
    )
    assert torch.get_num_threads() == 2


def test_trainer_process_uses_the_runs_threads(threads, tmp_path):
    torch.set_num_threads(1)
    run = RunStore(tmp_path).create(tiny(torch_threads=2))
    assert trainer_process.main([str(run.path)]) == 0
    assert torch.get_num_threads() == 2


def test_sweep_trial_uses_the_trials_threads(threads, tmp_path):
    torch.set_num_threads(1)
    run = RunStore(tmp_path).create(tiny(torch_threads=2))
    assert sweep.train_trial(str(run.path), lambda: False) == ("finished", None)
    assert torch.get_num_threads() == 2
