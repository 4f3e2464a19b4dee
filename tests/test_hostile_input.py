"""Hostile or broken files and environments: refused or skipped with a message, nothing run."""

import json
import logging
import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import tiny_config
from trpo.config import ConfigError, TRPOConfig
from trpo.session import TrainingSession
from trpo.store import RunStore, RunStoreError, load_metrics

ROOT = Path(__file__).resolve().parent.parent


def cli(*args, cwd):
    return subprocess.run(
        [sys.executable, "-m", "trpo", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


def tiny_run(tmp_path, **overrides):
    session = TrainingSession.new(tiny_config(**overrides), RunStore(tmp_path / "runs"))
    session.run(None)
    return session.run_folder


class Payload:
    """Unpickling this would create the marker file."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.mark.slow  # python -m trpo processes
def test_pickle_payload_checkpoint_is_refused_and_never_executed(tmp_path):
    run = tiny_run(tmp_path)
    marker = tmp_path / "PWNED"
    (run.path / "checkpoint.safetensors").write_bytes(pickle.dumps(Payload(str(marker))))
    with pytest.raises(RunStoreError, match="not a valid checkpoint"):
        run.load_checkpoint()
    for args in (["eval", str(run.path)], ["train", "--resume", str(run.path)]):
        result = cli(*args, cwd=tmp_path)
        assert result.returncode == 2 and "not a valid checkpoint" in result.stderr
        assert "Traceback" not in result.stderr
    assert not marker.exists()


@pytest.mark.slow  # python -m trpo processes
def test_tampered_config_naming_an_entry_point_is_refused(tmp_path):
    run = tiny_run(tmp_path)
    marker_module = tmp_path / "evilmod.py"
    marker = tmp_path / "IMPORTED"
    marker_module.write_text(f"open({str(marker)!r}, 'w').close()\n")
    data = json.loads((run.path / "config.json").read_text())
    for tampered in (
        {**data, "env_id": "evilmod:Thing-v0"},
        {**data, "entry_point": "evilmod:Thing"},
        ["not", "an", "object"],
    ):
        (run.path / "config.json").write_text(json.dumps(tampered))
        with pytest.raises(ConfigError):
            run.config()
        result = cli("eval", str(run.path), cwd=tmp_path)
        assert result.returncode == 2 and "error" in result.stderr
        assert "Traceback" not in result.stderr
    assert not marker.exists()


def test_garbage_metrics_lines_are_skipped_with_a_warning(tmp_path, caplog):
    run = tiny_run(tmp_path)
    good = (run.path / "metrics.jsonl").read_text()
    (run.path / "metrics.jsonl").write_text(
        "garbage\n" + good + '{"no": "iteration"}\n\x00\x01binary\n' + '{"iteration": 3, "env'
    )
    with caplog.at_level(logging.WARNING, logger="trpo.store"):
        frame = load_metrics(run.path)
    assert list(frame["iteration"]) == [1, 2]
    assert "skipped 3 unreadable line(s)" in caplog.text


def test_disk_full_during_checkpoint_fails_the_run_and_keeps_the_previous_one(
    tmp_path, monkeypatch
):
    config = TRPOConfig(total_steps=4096, steps_per_iteration=512, vf_epochs=1, cg_iters=3)
    session = TrainingSession.new(config, RunStore(tmp_path / "runs"))
    import trpo.store as store_module

    real_write = store_module.atomic_write_bytes

    def full_disk(path, data):
        if Path(path).name == "checkpoint.safetensors" and session.trainer.iteration >= 3:
            raise OSError(28, "No space left on device")
        real_write(path, data)

    monkeypatch.setattr(store_module, "atomic_write_bytes", full_disk)
    with pytest.raises(RunStoreError, match="No space left on device"):
        session.run(None)
    run = session.run_folder
    assert run.status()["state"] == "failed"
    assert "No space left" in run.status()["error"]
    assert run.load_checkpoint().meta["iteration"] == 2


@pytest.mark.slow  # python -m trpo processes
def test_unwritable_runs_directory_gives_a_clear_cli_error(tmp_path):
    (tmp_path / "runs").write_text("a file where the runs directory should be")
    result = cli("train", "--total-steps", "4096", "--runs-dir", "runs", cwd=tmp_path)
    assert result.returncode == 2
    assert "cannot create a run" in result.stderr and "Traceback" not in result.stderr


def test_batch_too_large_for_memory_is_refused_before_allocating(tmp_path, monkeypatch):
    import trpo.trainer as trainer_module

    monkeypatch.setattr(trainer_module, "available_memory", lambda: 64 * 2**20)
    config = TRPOConfig(
        env_id="HalfCheetah-v5", steps_per_iteration=1_000_000, total_steps=1_000_000
    )
    with pytest.raises(ConfigError, match="steps_per_iteration = 1,000,000 needs about"):
        TrainingSession.new(config, RunStore(tmp_path / "runs"))
    assert not (tmp_path / "runs").exists()


@pytest.mark.slow  # python -m trpo processes
def test_env_with_missing_optional_dependency_names_it(tmp_path):
    # Box2D is a requirement, so its absence is simulated: None in sys.modules fails the import
    without_box2d = (
        "import sys; sys.modules['Box2D'] = None; "
        "from trpo.cli import main; sys.exit(main(sys.argv[1:]))"
    )
    result = subprocess.run(
        [sys.executable, "-c", without_box2d, "train", "--env", "LunarLander-v3",
         "--runs-dir", "runs"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    assert result.returncode == 2
    assert "optional dependency" in result.stderr and "box2d" in result.stderr.lower()
    assert not (tmp_path / "runs").exists()


def test_dashboard_listens_on_localhost_by_default():
    from streamlit import config as st_config

    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        st_config.get_config_options(force_reparse=True)
        assert st_config.get_option("server.address") == "127.0.0.1"
        assert st_config.get_option("client.showErrorDetails") == "none"
        assert st_config.get_option("server.fileWatcherType") == "none"
        assert st_config.get_option("client.toolbarMode") == "viewer"  # no Deploy, no dev menu
    finally:
        os.chdir(cwd)
        st_config.get_config_options(force_reparse=True)
