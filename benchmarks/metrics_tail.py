"""Cost of one live refresh of a long run's metrics: `MetricsTail.frame()` on a 2,000-record log.

The log is made of real records (a short CartPole run with the geometry probe, about 2.4 KB a
line) copied up to --records iterations. Timed, each as the median of --repeats calls:

- no change, settled: the log is unchanged since the last call and was last written more than
  3 s ago (a dashboard tab polling an idle run);
- no change, just written: unchanged since the last call but written less than 3 s ago (a
  poll between two iterations of a training run);
- one appended line: one record appended before each call (a run training at one iteration
  per refresh);
- full parse: `load_metrics` (every line parsed again), for scale.

    python benchmarks/metrics_tail.py            # about 25 s
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import common


def make_log(folder: Path, records: int) -> tuple[Path, list[str]]:
    """A run folder whose log holds `records` records; also the lines to append later."""
    from trpo.config import TRPOConfig
    from trpo.session import TrainingSession
    from trpo.store import RunStore

    config = TRPOConfig(total_steps=4096, steps_per_iteration=1024, probe_geometry=True)
    session = TrainingSession.new(config, RunStore(folder))
    session.run(None)
    path = session.run_folder.path
    source = [json.loads(line) for line in (path / "metrics.jsonl").read_text().splitlines()]

    def line(iteration: int) -> str:
        row = dict(source[iteration % len(source)], iteration=iteration)
        return json.dumps(row, separators=(",", ":")) + "\n"

    (path / "metrics.jsonl").write_text("".join(line(i) for i in range(1, records + 1)))
    return path, [line(i) for i in range(records + 1, records + 1001)]


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def measure(run_dir: Path, extra: list[str], repeats: int) -> dict[str, float]:
    from trpo.metrics_tail import MetricsTail
    from trpo.store import load_metrics

    tail = MetricsTail(run_dir)
    tail.frame()

    def unchanged() -> list[float]:
        samples = []
        for _ in range(repeats):
            start = time.perf_counter()
            tail.frame()
            samples.append(time.perf_counter() - start)
        return samples

    fresh = unchanged()
    time.sleep(3.5)
    tail.frame()
    idle = unchanged()
    grow = []
    for line in extra[:repeats]:
        with open(run_dir / "metrics.jsonl", "a") as handle:
            handle.write(line)
        start = time.perf_counter()
        tail.frame()
        grow.append(time.perf_counter() - start)
    full = []
    for _ in range(max(3, repeats // 10)):
        start = time.perf_counter()
        load_metrics(run_dir)
        full.append(time.perf_counter() - start)
    return {
        "no_change_ms": median_ms(idle),
        "no_change_just_written_ms": median_ms(fresh),
        "one_line_ms": median_ms(grow),
        "full_parse_ms": median_ms(full),
        "log_bytes": (run_dir / "metrics.jsonl").stat().st_size,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--label", default="current", help="a name for this code version")
    parser.add_argument("--output", default=None)
    args = parser.parse_args()
    common.limit_threads(1)
    with tempfile.TemporaryDirectory() as folder:
        common.log("making the log (a short CartPole run)...")
        run_dir, extra = make_log(Path(folder), args.records)
        result = measure(run_dir, extra, args.repeats)
    print(
        common.markdown_table(
            [
                "code",
                "records",
                "log MB",
                "no change (ms)",
                "no change, just written (ms)",
                "one line (ms)",
                "full parse (ms)",
            ],
            [
                [
                    args.label,
                    args.records,
                    result["log_bytes"] / 1e6,
                    result["no_change_ms"],
                    result["no_change_just_written_ms"],
                    result["one_line_ms"],
                    result["full_parse_ms"],
                ]
            ],
            digits=[0, 0, 1, 3, 3, 2, 1],
        )
    )
    common.write_results(
        "metrics_tail", {"label": args.label, "records": args.records, **result}, args.output
    )


if __name__ == "__main__":
    main()
