"""The registry of trainer processes: idempotent starts, the cap, stop, failures, resume, and
runs that outlive their registry (cache clear, server restart or death)."""

import os
import signal
import subprocess
import sys
import time

import pytest

from tests.conftest import tiny_config, wait_for
from trpo.background import CapacityError, TrainingRegistry
from trpo.config import ConfigError
from trpo.envs import EnvError
from trpo.store import RunStore, RunStoreError, load_metrics, open_run

# trains until stopped
ENDLESS = dict(total_steps=1_000_000, cg_iters=3)


def records(run_dir) -> int:
    return len(load_metrics(run_dir))


@pytest.fixture
def registry(tmp_path):
    reg = TrainingRegistry(tmp_path / "runs", max_concurrent=2)
    yield reg
    reg.stop_all(timeout=60)
    assert not reg.active()


@pytest.mark.slow  # trainer processes
def test_same_config_twice_gives_one_trainer_process(registry, tmp_path):
    first = registry.start(tiny_config(ENDLESS))
    again = registry.start(tiny_config(ENDLESS))
    assert again is first
    assert first.process is not None and first.process.pid != os.getpid()
    assert open_run(first.run_dir).status()["pid"] == first.process.pid
    assert len(list((tmp_path / "runs").iterdir())) == 1
    assert wait_for(lambda: records(first.run_dir) >= 1)  # the process really trains


@pytest.mark.slow  # trainer processes
def test_cap_refuses_another_run_and_stop_frees_a_place(registry):
    a = registry.start(tiny_config(ENDLESS, seed=1))
    registry.start(tiny_config(ENDLESS, seed=2))
    with pytest.raises(CapacityError, match="limit is 2"):
        registry.start(tiny_config(ENDLESS, seed=3))
    assert registry.stop(a.run_id, timeout=60)
    assert wait_for(lambda: a.outcome is not None) and a.outcome == "stopped"
    registry.start(tiny_config(ENDLESS, seed=3))
    assert len(registry.active()) == 2


@pytest.mark.slow  # trainer processes
def test_stop_ends_the_process_after_an_iteration_with_a_checkpoint(registry):
    handle = registry.start(tiny_config(ENDLESS))
    assert wait_for(lambda: records(handle.run_dir) >= 2)
    started = time.monotonic()
    assert registry.stop(handle.run_id, timeout=60)
    assert time.monotonic() - started < 10
    assert handle.process.wait(30) == 0
    run = open_run(handle.run_dir)
    assert run.state() == "stopped"
    assert not run.stop_requested()  # consumed: a later resume is not stopped by it
    assert run.load_checkpoint().meta["iteration"] == records(handle.run_dir)


def test_bad_input_raises_before_anything_starts(registry, tmp_path):
    with pytest.raises(ConfigError):
        registry.start(tiny_config(ENDLESS, delta=-1.0))
    with pytest.raises(EnvError):
        registry.start(tiny_config(ENDLESS, env_id="NotThere-v0"))
    assert not registry.handles()
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


@pytest.mark.slow  # trainer processes
def test_a_killed_trainer_is_marked_failed_not_running(registry):
    handle = registry.start(tiny_config(ENDLESS))
    assert wait_for(lambda: records(handle.run_dir) >= 1)
    handle.process.send_signal(signal.SIGKILL)
    assert wait_for(lambda: handle.outcome is not None)
    status = open_run(handle.run_dir).status()
    assert status["state"] == "failed" and handle.outcome == "failed"
    assert "exit code -9" in status["error"]


@pytest.mark.slow  # trainer processes
def test_a_checkpoint_that_no_longer_fits_is_refused_before_a_process_starts(registry):
    handle = registry.start(tiny_config(ENDLESS))
    assert wait_for(lambda: records(handle.run_dir) >= 1)
    assert registry.stop(handle.run_id, timeout=60)
    run = open_run(handle.run_dir)
    run.write_config(tiny_config(ENDLESS, hidden_sizes=(8,)))  # no longer fits the checkpoint
    with pytest.raises(RunStoreError, match="does not match"):
        registry.resume(handle.run_dir)
    assert registry.get(handle.run_id) is handle and run.state() == "stopped"


@pytest.mark.slow  # trainer processes
def test_a_trainer_process_that_cannot_start_says_why_in_the_status(registry, capsys):
    """What the server checked can change before the process starts (files edited between
    the two): the process marks the run failed with the reason and exits 1."""
    from trpo import trainer_process

    handle = registry.start(tiny_config(ENDLESS))
    assert wait_for(lambda: records(handle.run_dir) >= 1)
    assert registry.stop(handle.run_id, timeout=60)
    run = open_run(handle.run_dir)
    run.write_config(tiny_config(ENDLESS, hidden_sizes=(8,)))
    assert trainer_process.main([str(handle.run_dir)]) == 1
    status = run.status()
    assert status["state"] == "failed" and status["error"].startswith("could not start")
    assert "does not match" in status["error"] and "does not match" in capsys.readouterr().err


@pytest.mark.slow  # trainer processes
def test_an_unreadable_checkpoint_is_refused_before_a_process_starts(registry):
    handle = registry.start(tiny_config(ENDLESS))
    assert wait_for(lambda: records(handle.run_dir) >= 1)
    assert registry.stop(handle.run_id, timeout=60)
    (handle.run_dir / "checkpoint.safetensors").write_bytes(b"not a checkpoint")
    with pytest.raises(RunStoreError, match="not a valid checkpoint"):
        registry.resume(handle.run_dir)
    assert registry.get(handle.run_id) is handle  # nothing new was launched
    assert open_run(handle.run_dir).state() == "stopped"


@pytest.mark.slow  # trainer processes
def test_resume_continues_a_stopped_run_in_a_new_process(registry):
    handle = registry.start(tiny_config(ENDLESS))
    assert wait_for(lambda: records(handle.run_dir) >= 1)
    assert registry.stop(handle.run_id, timeout=60)
    done = records(handle.run_dir)
    resumed = registry.resume(handle.run_dir)
    assert registry.resume(handle.run_dir) is resumed  # idempotent while alive
    assert resumed.process.pid != handle.process.pid
    assert wait_for(lambda: records(handle.run_dir) >= done + 2)
    assert registry.stop(resumed.run_id, timeout=60)
    iterations = list(load_metrics(handle.run_dir)["iteration"])
    assert iterations == list(range(1, len(iterations) + 1))


@pytest.mark.slow  # trainer processes
def test_resume_refuses_a_budget_already_trained(registry):
    handle = registry.start(tiny_config(ENDLESS, total_steps=1024))
    assert wait_for(lambda: handle.outcome is not None) and handle.outcome == "finished"
    with pytest.raises(ConfigError, match="already trained"):
        registry.resume(handle.run_dir)
    with pytest.raises(ConfigError, match="already trained"):
        registry.resume(handle.run_dir, total_steps=1024)


@pytest.mark.slow  # trainer processes
def test_a_new_registry_finds_the_live_runs_and_stops_them(registry, tmp_path):
    """A cleared cache or a restarted server makes a new registry: it adopts the runs still
    training (they count towards the cap, a same-config start returns them) and stops them."""
    handle = registry.start(tiny_config(ENDLESS))
    assert wait_for(lambda: records(handle.run_dir) >= 1)
    fresh = TrainingRegistry(tmp_path / "runs", max_concurrent=1)
    [found] = fresh.active()
    assert found.run_id == handle.run_id and found.process is None
    assert fresh.start(tiny_config(ENDLESS)) is found
    with pytest.raises(CapacityError):
        fresh.start(tiny_config(ENDLESS, seed=9))
    assert fresh.stop(found.run_id, timeout=60)
    assert open_run(handle.run_dir).state() == "stopped"
    assert wait_for(lambda: handle.outcome == "stopped")


LAUNCH_AND_DIE = """
import sys
from trpo.background import TrainingRegistry
from trpo.config import TRPOConfig
handle = TrainingRegistry(sys.argv[1]).start(TRPOConfig(
    total_steps=1_000_000, steps_per_iteration=512, vf_epochs=1, cg_iters=3))
print(handle.run_dir, flush=True)
import os, signal
os.kill(os.getpid(), signal.SIGKILL)  # the server dies without any cleanup
"""


@pytest.mark.slow  # trainer processes
def test_a_trainer_outlives_the_server_that_started_it(tmp_path):
    runs = tmp_path / "runs"
    launcher = subprocess.run(
        [sys.executable, "-c", LAUNCH_AND_DIE, str(runs)], capture_output=True, text=True
    )
    assert launcher.returncode == -signal.SIGKILL, launcher.stderr
    run_dir = launcher.stdout.strip()
    assert wait_for(lambda: records(run_dir) >= 3)  # still training after the server died
    fresh = TrainingRegistry(runs)
    assert [h.run_id for h in fresh.active()] == [open_run(run_dir).id]
    assert fresh.stop(open_run(run_dir).id, timeout=60)
    run = open_run(run_dir)
    assert run.state() == "stopped"
    assert run.load_checkpoint().meta["iteration"] == records(run_dir)


@pytest.mark.slow  # trainer processes
def test_stop_reaches_a_cli_run(tmp_path):
    runs = tmp_path / "runs"
    knobs = ["--total-steps", "1000000", "--steps-per-iteration", "512", "--vf-epochs", "1"]
    cli = subprocess.Popen(
        [sys.executable, "-m", "trpo", "train", "--runs-dir", str(runs), "--quiet", *knobs],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert wait_for(lambda: RunStore(runs).runs() and records(RunStore(runs).runs()[0].path))
        [run] = RunStore(runs).runs()
        registry = TrainingRegistry(runs)
        assert registry.get(run.id) is None  # not the dashboard's
        assert registry.stop(run.id, timeout=60)
        assert cli.wait(30) == 0
        assert run.state() == "stopped"
    finally:
        cli.kill()
        cli.wait()
