"""The run store: folders, metrics log, status, atomic safetensors checkpoints, resume."""

import dataclasses
import json
import math
import re
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import tiny_config
from trpo.evaluate import load_policy
from trpo.metrics_log import record_at
from trpo.record import IterationRecord
from trpo.session import TrainingSession
from trpo.store import RunStore, RunStoreError, load_metrics, open_run

# three iterations of 512 steps
THREE = dict(total_steps=1536, vf_epochs=2, seed=1)


def test_session_writes_config_records_status_and_checkpoint(tmp_path):
    session = TrainingSession.new(tiny_config(THREE), RunStore(tmp_path), name="first try")
    assert session.run(None) == "finished"
    run = session.run_folder
    assert run.path.parent == tmp_path
    assert run.config() == tiny_config(THREE)
    assert run.status()["state"] == "finished"
    assert run.meta()["name"] == "first try"
    frame = load_metrics(run.path)
    for column in (
        "iteration",
        "env_steps",
        "wall_time_s",
        "return_mean",
        "kl",
        "backtrack_index",
        "step_accepted",
        "cg_residuals",
        "value_loss",
        "entropy",
        "explained_variance",
    ):
        assert column in frame.columns
    assert list(frame["iteration"]) == [1, 2, 3]
    assert list(frame["env_steps"]) == [512, 1024, 1536]
    assert all(isinstance(r, list) and r for r in frame["cg_residuals"])
    rejected = ~frame["step_accepted"]
    assert frame.loc[rejected, "backtrack_index"].isna().all()
    assert frame.loc[~rejected, "backtrack_index"].notna().all()
    checkpoint = run.load_checkpoint()
    assert checkpoint.meta["iteration"] == 3


def test_rejected_step_has_nan_backtrack_index(tmp_path):
    run = RunStore(tmp_path).create(tiny_config(THREE))
    lines = [
        {
            "iteration": 1,
            "env_steps": 512,
            "step_accepted": True,
            "backtrack_index": 2,
            "kl": 0.005,
        },
        {
            "iteration": 2,
            "env_steps": 1024,
            "step_accepted": False,
            "backtrack_index": None,
            "kl": None,
        },
    ]
    (run.path / "metrics.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    frame = load_metrics(run.path)
    assert frame["backtrack_index"].iloc[0] == 2.0
    assert math.isnan(frame["backtrack_index"].iloc[1])
    assert math.isnan(frame["kl"].iloc[1])
    assert list(frame["step_accepted"]) == [True, False]


def test_records_are_typed_across_versions_and_rows_keep_what_is_new(tmp_path):
    """records(): IterationRecords equal to what the trainer yielded; a field an older version
    did not write is None; a newer version's field is ignored by records(), kept by rows() and
    by truncate_metrics."""
    yielded = []
    session = TrainingSession.new(tiny_config(THREE, total_steps=1024), RunStore(tmp_path))
    session.run(None, on_record=yielded.append)
    run = session.run_folder
    assert run.records() == [IterationRecord.from_dict(r.to_dict()) for r in yielded]
    assert [r.iteration for r in run.records()] == [1, 2]
    old = {"iteration": 3, "env_steps": 1536, "return_mean": 9.5, "from_the_future": [1, 2]}
    with open(run.path / "metrics.jsonl", "a") as handle:
        handle.write(json.dumps(old) + "\n")
    last = run.records()[-1]
    assert (last.iteration, last.env_steps, last.return_mean) == (3, 1536, 9.5)
    assert last.kl is None and last.step_accepted is None and last.cg_residuals == []
    assert last.line_search == [] and last.geometry is None and last.extra == {}
    assert run.rows()[-1] == old
    run.truncate_metrics(3)
    assert run.rows()[-1] == old and len(run.rows()) == 3


def test_record_at_reads_back_what_the_trainer_yielded(tmp_path):
    """load_metrics + record_at give each iteration's record as the trainer yielded it (after
    the JSON round trip), geometry probe and candidates typed; a rejected step's missing
    numbers come back None, not NaN."""
    yielded = []
    config = tiny_config(THREE, total_steps=1024, probe_geometry=True)
    session = TrainingSession.new(config, RunStore(tmp_path))
    session.run(None, on_record=yielded.append)
    run_dir = session.run_folder.path
    rejected = dataclasses.replace(
        yielded[-1], iteration=3, env_steps=1536, step_accepted=False, backtrack_index=None,
        kl=None, reject_reason="no candidate passed", step_norm=0.0,
    )  # fmt: skip
    with open(run_dir / "metrics.jsonl", "a") as handle:
        handle.write(json.dumps(rejected.to_dict()) + "\n")
    frame = load_metrics(run_dir)
    for record in [*yielded, rejected]:
        want = IterationRecord.from_dict(record.to_dict())
        assert record_at(frame, record.iteration) == want
    first = record_at(frame, 1)
    assert first.geometry is not None and first.line_search and first.cg_residuals
    assert type(first.backtrack_index) is int and type(first.episodes) is int
    back = record_at(frame, 3)
    assert back.backtrack_index is None and back.kl is None and back.step_accepted is False
    with pytest.raises(KeyError, match="iteration 4"):
        record_at(frame, 4)


def test_half_written_and_garbage_lines_are_skipped(tmp_path):
    session = TrainingSession.new(tiny_config(THREE, total_steps=1024), RunStore(tmp_path))
    session.run(None)
    path = session.run_folder.path / "metrics.jsonl"
    with open(path, "ab") as handle:
        handle.write(b'not json at all\n{"iteration": 3, "env_steps": 15')
    frame = load_metrics(session.run_folder.path)
    assert list(frame["iteration"]) == [1, 2]


def test_user_name_is_metadata_never_a_path(tmp_path):
    store = RunStore(tmp_path / "runs")
    for name in ["../../etc", "/etc/passwd", "a\x00b", "x" * 5000, "Ünïcødé ✓ 名前"]:
        run = store.create(tiny_config(THREE), name=name)
        assert run.path.parent == tmp_path / "runs"
        assert re.fullmatch(r"\d{8}-\d{6}-CartPole-v1-[0-9a-f]{6}", run.path.name)
        stored = run.meta()["name"]
        assert "\x00" not in stored and len(stored) <= 200
    assert not (tmp_path / "etc").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["runs"]


def test_checkpoint_is_safetensors_without_pickle(tmp_path):
    session = TrainingSession.new(tiny_config(THREE, total_steps=512), RunStore(tmp_path))
    session.run(None)
    data = (session.run_folder.path / "checkpoint.safetensors").read_bytes()
    header = json.loads(data[8 : 8 + int.from_bytes(data[:8], "little")])
    assert "policy/net.0.weight" in header
    assert b"\x80\x04" not in data[:16]  # not a pickle stream
    assert not list(session.run_folder.path.glob("*.tmp"))


def test_corrupt_checkpoint_is_refused_with_a_message(tmp_path):
    run = RunStore(tmp_path).create(tiny_config(THREE))
    (run.path / "checkpoint.safetensors").write_bytes(b"\x80\x04garbage pickle-ish bytes")
    with pytest.raises(RunStoreError, match="not a valid checkpoint"):
        run.load_checkpoint()


def test_saved_policy_gives_identical_deterministic_actions(tmp_path):
    session = TrainingSession.new(
        tiny_config(THREE, env_id="Pendulum-v1", normalize_observations=True, total_steps=1024),
        RunStore(tmp_path),
    )
    session.run(None)
    trainer = session.trainer
    loaded = load_policy(session.run_folder.path)
    rng = np.random.default_rng(0)
    obs = rng.normal(size=(50, 3))
    actor = trainer.policy.numpy_actor()
    for row in obs:
        want = actor.deterministic(trainer.obs_normalizer(row[None]))[0]
        assert np.array_equal(loaded.act(row), np.clip(want, -2.0, 2.0))


def test_resume_continues_the_iteration_count(tmp_path):
    config = tiny_config(THREE, total_steps=1024)
    session = TrainingSession.new(config, RunStore(tmp_path))
    session.run(None)
    run_dir = session.run_folder.path
    resumed = TrainingSession.resume(str(run_dir), total_steps=2048)
    assert resumed.trainer.iteration == 2
    assert resumed.run(None) == "finished"
    frame = load_metrics(run_dir)
    assert list(frame["iteration"]) == [1, 2, 3, 4]
    assert list(frame["env_steps"]) == [512, 1024, 1536, 2048]
    assert open_run(run_dir).config().total_steps == 2048


def test_resume_drops_records_past_the_checkpoint(tmp_path):
    """A crash between the record and the checkpoint: metrics one iteration ahead."""
    session = TrainingSession.new(tiny_config(THREE, total_steps=1024), RunStore(tmp_path))
    session.run(None)
    run_dir: Path = session.run_folder.path
    extra = load_metrics(run_dir).iloc[-1].to_dict()
    with open(run_dir / "metrics.jsonl", "a") as handle:
        handle.write(json.dumps({"iteration": 3, "env_steps": 1536}) + "\n")
    resumed = TrainingSession.resume(str(run_dir), total_steps=1536)
    resumed.run(None)
    frame = load_metrics(run_dir)
    assert list(frame["iteration"]) == [1, 2, 3]
    assert not math.isnan(frame["value_loss"].iloc[2])
    assert extra["iteration"] == 2


def test_a_stop_asked_by_a_pruner_ends_the_run_pruned(tmp_path):
    """A sweep's pruner stops a run like a stop, with the reason: the run ends 'pruned'."""
    session = TrainingSession.new(tiny_config(), RunStore(tmp_path))
    session.run_folder.request_stop(reason="pruned")
    assert session.run_folder.stop_reason() == "pruned"
    assert session.run() == "pruned"
    run = session.run_folder
    assert run.status()["state"] == "pruned" and run.state() == "pruned"
    assert not run.stop_requested() and run.has_checkpoint()
    assert run.status()["iteration"] == 0  # asked before the first iteration: none ran
    other = TrainingSession.new(tiny_config(), RunStore(tmp_path))
    other.run_folder.request_stop()  # a plain stop stays a stop
    assert other.run_folder.stop_reason() is None
    assert other.run() == "stopped"


def test_failure_marks_the_run_failed_with_the_iteration(tmp_path, monkeypatch):
    session = TrainingSession.new(tiny_config(THREE), RunStore(tmp_path))

    def boom(*args, **kwargs):
        raise RuntimeError("value net exploded")

    monkeypatch.setattr(session.trainer, "_fit_value", boom)
    with pytest.raises(RuntimeError):
        session.run(None)
    status = session.run_folder.status()
    assert status["state"] == "failed"
    assert "iteration 1" in status["error"] and "value net exploded" in status["error"]


def test_bad_env_creates_no_run_folder(tmp_path):
    from trpo.envs import EnvError

    with pytest.raises(EnvError):
        TrainingSession.new(tiny_config(THREE, env_id="NoSuchEnv-v0"), RunStore(tmp_path / "runs"))
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_store_lists_runs_newest_first(tmp_path):
    store = RunStore(tmp_path)
    a = store.create(tiny_config(THREE))
    b = store.create(tiny_config(THREE, env_id="Pendulum-v1"))
    assert {r.path for r in store.runs()} == {a.path, b.path}
    # ten runs made within a second or two (ids share their time, random tails): creation order
    made = [store.create(tiny_config(THREE)) for _ in range(10)]
    assert [r.id for r in store.runs()][:10] == [r.id for r in reversed(made)]
    with pytest.raises(RunStoreError):
        open_run(tmp_path / "nothing-here")


def test_metrics_tail_follows_appends_partial_lines_and_truncation(tmp_path):
    import pandas as pd

    from trpo.metrics_tail import MetricsTail

    session = TrainingSession.new(tiny_config(THREE, total_steps=1536), RunStore(tmp_path))
    session.run(None)
    run_dir = session.run_folder.path
    path = run_dir / "metrics.jsonl"
    lines = path.read_text().splitlines(keepends=True)
    path.write_text(lines[0])
    tail = MetricsTail(run_dir)
    assert list(tail.frame()["iteration"]) == [1]
    with open(path, "a") as handle:
        handle.write(lines[1][:40])  # half of a record
    assert list(tail.frame()["iteration"]) == [1]
    with open(path, "a") as handle:
        handle.write(lines[1][40:] + lines[2])
    pd.testing.assert_frame_equal(tail.frame(), load_metrics(run_dir))
    path.write_text(lines[0])  # a resume dropped records: the file shrank
    assert list(tail.frame()["iteration"]) == [1]
