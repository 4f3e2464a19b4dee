"""`python -m trpo export --format tensorboard`: every scalar of every record, read back with
TensorBoard's own event reader and compared value by value with the run's records."""

from __future__ import annotations

import dataclasses
import shutil
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.util import tensor_util

from trpo.cli import main
from trpo.record import IterationRecord
from trpo.store import Run


@pytest.fixture
def run_with_extras(good_run: Path, tmp_path: Path) -> Run:
    """A copy of the good run plus one rejected iteration whose `extra` holds a number, a
    boolean and a text (fields a newer trainer might write)."""
    folder = tmp_path / good_run.name
    shutil.copytree(good_run, folder)
    run = Run(folder)
    last = run.records()[-1]
    run.append(
        dataclasses.replace(
            last,
            iteration=last.iteration + 1,
            env_steps=last.env_steps + 512,
            wall_time_s=last.wall_time_s + 0.25,
            step_accepted=False,
            backtrack_index=None,
            reject_reason="no candidate passed",
            kl=None,
            extra={"top_eigenvalue": 2.5, "flag": True, "note": "text"},
        )
    )
    return run


def expected_points(run: Run) -> dict[tuple[str, int], float]:
    """(field, env steps) -> value of every number of every record (booleans as 0/1), the CG
    iteration count and the numbers in `extra`, straight from the typed records."""
    points = {}
    for record in run.records():
        step = record.env_steps
        for field in dataclasses.fields(IterationRecord):
            value = getattr(record, field.name)
            if isinstance(value, (bool, int, float)):
                points[(field.name, step)] = float(value)
        points[("cg_iterations", step)] = float(len(record.cg_residuals))
        for key, value in record.extra.items():
            if isinstance(value, (bool, int, float)):
                points[(f"extra/{key}", step)] = float(value)
    return points


def read_events(folder: Path) -> dict[str, list]:
    """tag -> its TensorEvents (wall_time, step, tensor_proto), from TensorBoard's reader."""
    accumulator = EventAccumulator(str(folder), size_guidance={"tensors": 0})
    accumulator.Reload()
    return {tag: accumulator.Tensors(tag) for tag in accumulator.Tags()["tensors"]}


def test_every_scalar_of_every_record_reads_back(run_with_extras, tmp_path, capsys):
    run = run_with_extras
    out = tmp_path / "tb"
    assert main(["export", str(run.path), "--format", "tensorboard", "--out", str(out)]) == 0
    assert f"tensorboard --logdir {out}" in capsys.readouterr().out
    events = read_events(out / run.id)
    created = datetime.fromisoformat(run.meta()["created"]).timestamp()
    wall = {r.env_steps: r.wall_time_s for r in run.records()}
    got = {}
    for tag, series in events.items():
        group, field = tag.split("/", 1)
        name = tag if group == "extra" else field
        for event in series:
            assert (name, event.step) not in got, f"{tag} written twice at step {event.step}"
            got[(name, event.step)] = tensor_util.make_ndarray(event.tensor_proto).item()
            assert event.wall_time == pytest.approx(created + wall[event.step], abs=1e-3)
    expected = expected_points(run)
    assert got.keys() == expected.keys()
    for key, value in expected.items():
        assert got[key] == np.float32(value), key  # TensorBoard keeps float32
    last = run.records()[-1].env_steps
    assert ("kl", last) not in got and got[("step_accepted", last)] == 0.0  # the rejected step
    assert got[("extra/top_eigenvalue", last)] == 2.5 and ("extra/note", last) not in got
    groups = {tag.split("/")[1]: tag.split("/")[0] for tag in events}
    assert groups["return_mean"] == "episode" and groups["kl"] == "trust_region"
    assert groups["time_cg_s"] == "time" and groups["entropy"] == "policy"
    assert groups["iteration"] == "run" and groups["cg_iterations"] == "trust_region"


def test_a_second_export_into_the_same_folder_is_refused(good_run, tmp_path, capsys):
    out = tmp_path / "tb"
    args = ["export", str(good_run), "--format", "tensorboard", "--out", str(out)]
    assert main(args) == 0
    written = sorted((out / good_run.name).iterdir())
    capsys.readouterr()
    assert main(args) == 2
    assert "already holds TensorBoard event files" in capsys.readouterr().err
    assert sorted((out / good_run.name).iterdir()) == written
