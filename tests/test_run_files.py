"""One writer of run files: folder names, pid liveness, pack/unpack of a run (remote trials) and
deletes all go through trpo.ids and trpo.store."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from trpo import ids
from trpo.config import TRPOConfig
from trpo.store import RUN_FILES, Run, RunStore, RunStoreError


def test_fresh_folders_are_unique_and_named_time_label_random(tmp_path: Path):
    folders = {ids.fresh_folder(tmp_path, "Hopper-v5 (demo)") for _ in range(50)}
    assert len(folders) == 50 and all(f.is_dir() for f in folders)
    for folder in folders:
        assert re.fullmatch(r"\d{8}-\d{6}-Hopper-v5-demo-[0-9a-f]{6}", folder.name)
    assert ids.slug("///") == "run" and ids.slug("///", fallback="sweep") == "sweep"
    assert len(ids.slug("x" * 100)) == 40


def test_process_alive_tells_a_live_pid_from_a_dead_one():
    assert ids.process_alive(os.getpid())
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert not ids.process_alive(child.pid)  # reaped: the pid is free


def test_pack_and_unpack_copy_exactly_the_run_files(tmp_path: Path):
    store = RunStore(tmp_path / "runs")
    source = store.create(TRPOConfig(env_id="CartPole-v1", seed=3), name="original")
    (source.path / "scratch.tmp").write_text("not a run file")
    packed = source.pack()
    assert set(packed) == {n for n in RUN_FILES if (source.path / n).is_file()}
    target = store.create(TRPOConfig(env_id="CartPole-v1"), name="target")
    target.unpack(packed, keep_meta=True)
    assert target.config().seed == 3
    assert target.meta()["name"] == "target"  # kept
    target.unpack(packed)
    assert target.meta()["name"] == "original"
    assert not (target.path / "scratch.tmp").exists()


def test_delete_removes_a_finished_run_and_refuses_the_rest(tmp_path: Path):
    store = RunStore(tmp_path / "runs")
    run = store.create(TRPOConfig(env_id="CartPole-v1"))
    with pytest.raises(RunStoreError, match="training"):
        run.set_status("running", pid=os.getpid())
        store.delete(run)
    run.set_status("finished")
    store.delete(run)
    assert not run.path.exists() and store.runs() == []

    outside = RunStore(tmp_path / "elsewhere").create(TRPOConfig(env_id="CartPole-v1"))
    outside.set_status("finished")
    with pytest.raises(RunStoreError, match="not a run folder inside"):
        store.delete(outside)
    assert outside.path.exists()

    (tmp_path / "runs" / "stray").mkdir()

    with pytest.raises(RunStoreError, match=r"no config\.json"):
        store.delete(Run(tmp_path / "runs" / "stray"))
