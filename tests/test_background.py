"""The background training registry: idempotent starts, the cap, stop, failures, resume."""

import threading
import time

import pytest

from trpo.background import CapacityError, TrainingRegistry
from trpo.config import ConfigError, TRPOConfig
from trpo.envs import EnvError
from trpo.store import load_metrics


def config(**overrides) -> TRPOConfig:
    values = dict(total_steps=1_000_000, steps_per_iteration=512, vf_epochs=1, cg_iters=3)
    values.update(overrides)
    return TRPOConfig(**values)


def trainer_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("trpo-") and t.is_alive()]


def wait_for(predicate, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


@pytest.fixture
def registry(tmp_path):
    reg = TrainingRegistry(tmp_path / "runs", max_concurrent=2)
    yield reg
    reg.stop_all(timeout=30)
    assert not trainer_threads()


def test_same_config_twice_gives_one_trainer(registry, tmp_path):
    first = registry.start(config())
    again = registry.start(config())
    assert again is first
    assert len(trainer_threads()) == 1
    assert len(list((tmp_path / "runs").iterdir())) == 1


def test_cap_refuses_another_run_and_stop_frees_a_place(registry):
    a = registry.start(config(seed=1))
    registry.start(config(seed=2))
    with pytest.raises(CapacityError, match="limit is 2"):
        registry.start(config(seed=3))
    assert registry.stop(a.run_id, timeout=30)
    assert a.outcome == "stopped"
    registry.start(config(seed=3))
    assert len(registry.active()) == 2


def test_stop_ends_the_thread_between_iterations_and_marks_stopped(registry):
    handle = registry.start(config())
    assert wait_for(lambda: len(load_metrics(handle.run_dir)) >= 2)
    started = time.monotonic()
    assert registry.stop(handle.run_id, timeout=30)
    assert time.monotonic() - started < 5
    assert not handle.alive and handle.outcome == "stopped"
    from trpo.store import open_run

    run = open_run(handle.run_dir)
    assert run.state() == "stopped"
    assert run.load_checkpoint().meta["iteration"] == len(load_metrics(handle.run_dir))


def test_bad_input_raises_before_anything_starts(registry, tmp_path):
    with pytest.raises(ConfigError):
        registry.start(config(delta=-1.0))
    with pytest.raises(EnvError):
        registry.start(config(env_id="NotThere-v0"))
    assert not registry.handles() and not trainer_threads()
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_a_failing_trainer_is_recorded_as_failed(registry, monkeypatch):
    from trpo import trainer as trainer_module

    def boom(self, obs, returns):
        raise RuntimeError("synthetic failure")

    monkeypatch.setattr(trainer_module.Trainer, "_fit_value", boom)
    handle = registry.start(config())
    handle.thread.join(30)
    assert handle.outcome == "failed" and "synthetic failure" in handle.error
    from trpo.store import open_run

    status = open_run(handle.run_dir).status()
    assert status["state"] == "failed" and "iteration 1" in status["error"]


def test_resume_continues_a_stopped_run(registry):
    handle = registry.start(config())
    assert wait_for(lambda: len(load_metrics(handle.run_dir)) >= 1)
    registry.stop(handle.run_id, timeout=30)
    done = len(load_metrics(handle.run_dir))
    resumed = registry.resume(handle.run_dir)
    assert registry.resume(handle.run_dir) is resumed  # idempotent while alive
    assert wait_for(lambda: len(load_metrics(handle.run_dir)) >= done + 2)
    registry.stop(resumed.run_id, timeout=30)
    iterations = list(load_metrics(handle.run_dir)["iteration"])
    assert iterations == list(range(1, len(iterations) + 1))
