"""MetricsTail, the incremental reader of metrics.jsonl, always gives what load_metrics gives."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from trpo.config import TRPOConfig
from trpo.record import IterationRecord
from trpo.store import METRICS, MetricsTail, Run, RunStore, load_metrics


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
    for iteration, value in zip(range(6, 13), [110.25, 158.9, 71.2, 140.0, 190.5, 201.0, 250.0]):
        run.append(record(iteration, value))
    assert (run.path / METRICS).stat().st_size > old_size

    frame = tail.frame()
    assert list(frame["iteration"]) == list(range(1, 13))
    assert list(frame["return_mean"].iloc[5:9]) == [110.25, 158.9, 71.2, 140.0]
    pd.testing.assert_frame_equal(frame, load_metrics(run.path))
