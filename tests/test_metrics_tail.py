"""MetricsTail, the incremental reader of metrics.jsonl, always gives what load_metrics gives."""

from __future__ import annotations

import json
import time
from pathlib import Path
from unittest import mock

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trpo.config import TRPOConfig
from trpo.metrics_tail import MetricsTail
from trpo.record import IterationRecord
from trpo.store import METRICS, Run, RunStore, atomic_write_bytes, load_metrics


def record(iteration: int, return_mean: float | None) -> IterationRecord:
    """A CartPole-like record (512 steps per iteration, an accepted step)."""
    return IterationRecord(
        iteration=iteration,
        env_steps=512 * iteration,
        wall_time_s=0.4 * iteration,
        iteration_time_s=0.4,
        steps_per_s=1280.0,
        episodes=4,
        return_mean=return_mean,
        return_std=3.5,
        return_min=None if return_mean is None else return_mean - 5,
        return_max=None if return_mean is None else return_mean + 5,
        length_mean=return_mean,
        step_accepted=True,
        backtrack_index=0,
        reject_reason=None,
        kl=0.0091,
        surrogate_before=0.0,
        surrogate_after=0.012,
        grad_norm=0.31,
        g_dot_x=0.8,
        x_h_x=0.77,
        step_scale=0.16,
        step_norm=0.5,
        cg_residuals=[0.1, 0.01, 0.001],
        line_search=[],
        entropy=0.69,
        log_std_mean=None,
        value_loss=12.5,
        explained_variance=0.4,
        time_collect_s=0.2,
        time_advantages_s=0.01,
        time_cg_s=0.05,
        time_linesearch_s=0.05,
        time_value_s=0.09,
    )


def new_run(tmp_path: Path) -> Run:
    return RunStore(tmp_path).create(TRPOConfig(env_id="CartPole-v1", checkpoint_every=5))


def test_resume_that_outgrows_the_old_log_replaces_the_dropped_records(tmp_path):
    """CartPole, checkpoint every 5, failed at iteration 8, resumed to 12: the log is cut back to
    iteration 5 and 6-12 appended, so it is longer than before the tail looks again."""
    run = new_run(tmp_path)
    before = [22.1, 30.4, 41.0, 58.3, 80.9, 111.1, 75.5, 60.0]
    for iteration, value in enumerate(before, start=1):
        run.append(record(iteration, value))
    tail = MetricsTail(run.path)
    assert list(tail.frame()["return_mean"]) == before
    old_size = (run.path / METRICS).stat().st_size

    run.truncate_metrics(5)
    after = [110.25, 158.9, 71.2, 140.0, 190.5, 201.0, 250.0]
    for iteration, value in zip(range(6, 13), after, strict=True):
        run.append(record(iteration, value))
    assert (run.path / METRICS).stat().st_size > old_size

    frame = tail.frame()
    assert list(frame["iteration"]) == list(range(1, 13))
    assert list(frame["return_mean"].iloc[5:9]) == [110.25, 158.9, 71.2, 140.0]
    pd.testing.assert_frame_equal(frame, load_metrics(run.path))


# --- any sequence of writes -----------------------------------------------------------------


class Writer:
    """Changes a run's metrics log the ways a run, a resume or a person can."""

    def __init__(self, run: Run) -> None:
        self.run = run
        self.path = run.path / METRICS
        self.next = 1
        self.rest = b""  # the unwritten end of a half-written line

    def content(self) -> bytes:
        return self.path.read_bytes() if self.path.exists() else b""

    def line(self, value: int) -> bytes:
        data = record(self.next, value / 7).to_dict()
        self.next += 1
        return json.dumps(data, separators=(",", ":")).encode() + b"\n"

    def write(self, data: bytes, mode: str = "ab") -> None:
        with open(self.path, mode) as handle:
            handle.write(data)

    def apply(self, op: str, n: int) -> None:
        if op == "append":
            for value in range(n % 4 + 1):
                self.run.append(record(self.next, (n + value) / 3))
                self.next += 1
        elif op == "truncate":
            self.run.truncate_metrics(n % 12)
            self.next = n % 12 + 1
        elif op == "half":  # a writer stopped mid-line; "complete" writes the rest
            line = self.line(n)
            cut = 1 + n % (len(line) - 1)
            self.write(line[:cut])
            self.rest = line[cut:]
        elif op == "complete":
            self.write(self.rest)
            self.rest = b""
        elif op == "same_size":  # one digit changed in place: same length, other content
            data = bytearray(self.content())
            digits = [i for i, c in enumerate(data) if chr(c).isdigit()]
            if digits:
                i = digits[n % len(digits)]
                data[i] = ord(str((int(chr(data[i])) + 1) % 10))
                self.write(bytes(data), "r+b")
        elif op in ("rewrite", "replace"):  # other records, shorter or longer than before
            self.next = 1 + n % 3
            text = b"".join(self.line(n * 31 + i) for i in range(n % 7))
            if op == "rewrite":
                self.write(text, "wb")
            else:
                atomic_write_bytes(self.path, text)
        elif op == "garbage":
            self.write(b'{"not": "a record"}\nnot json at all\n')
        elif op == "delete":
            self.path.unlink(missing_ok=True)


OPS = st.lists(
    st.tuples(
        st.sampled_from(
            [
                "append",
                "truncate",
                "half",
                "complete",
                "same_size",
                "rewrite",
                "replace",
                "garbage",
                "delete",
            ]
        ),
        st.integers(0, 1000),
    ),
    max_size=12,
)


@pytest.fixture(scope="module")
def shared_run(tmp_path_factory) -> Run:
    """One run folder for every example (its log is removed before each)."""
    return new_run(tmp_path_factory.mktemp("tail"))


@pytest.mark.slow  # 100 generated write sequences: about 5 s
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=OPS)
def test_tail_equals_the_full_parse_after_any_sequence_of_writes(shared_run, ops):
    (shared_run.path / METRICS).unlink(missing_ok=True)
    writer = Writer(shared_run)
    tail = MetricsTail(shared_run.path)
    with mock.patch("os.fsync"):  # durability is not the question here; speed is
        for op, n in ops:
            writer.apply(op, n)
            pd.testing.assert_frame_equal(tail.frame(), load_metrics(shared_run.path))


def test_an_unchanged_settled_log_is_not_read_again(tmp_path, monkeypatch):
    """Once the log's last write is older than RACY_NS, a call on an unchanged file only stats
    it; an append is still seen."""
    run = new_run(tmp_path)
    run.append(record(1, 10.0))
    real_ns = time.time_ns
    monkeypatch.setattr(time, "time_ns", lambda: real_ns() + 2 * MetricsTail.RACY_NS)
    tail = MetricsTail(run.path)
    assert list(tail.frame()["iteration"]) == [1]
    reads = []
    original = MetricsTail._read
    monkeypatch.setattr(MetricsTail, "_read", lambda self: reads.append(1) or original(self))
    _, version = tail.snapshot()
    assert tail.snapshot()[1] == version and reads == []
    run.append(record(2, 20.0))
    frame, new_version = tail.snapshot()
    assert list(frame["iteration"]) == [1, 2] and reads == [1] and new_version != version


def test_a_just_written_log_is_verified_even_if_its_stat_is_unchanged(tmp_path, monkeypatch):
    """A read less than RACY_NS after the last write is checked again on the next call: a
    rewrite in the same timestamp tick with the same size leaves the stat as it was."""
    run = new_run(tmp_path)
    run.append(record(1, 10.0))
    tail = MetricsTail(run.path)
    tail.frame()
    reads = []
    original = MetricsTail._read
    monkeypatch.setattr(MetricsTail, "_read", lambda self: reads.append(1) or original(self))
    tail.frame()
    assert reads == [1]
