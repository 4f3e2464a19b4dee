"""Sweep speedup: the same 8-trial CartPole sweep with 1 and 2 local workers and through Ray.

The sweep is the CartPole-v1 preset with 2 deltas x 2 alphas x 2 seeds (8 trials). Each mode
runs it with trpo.sweep.run_sweep into a fresh temporary run store, timed from the call to its
return, as a user would see it: the pool's worker start-up (a fresh interpreter importing torch)
and, for "ray (started by the sweep)", ray.init and ray.shutdown are inside the time. "ray
(already running)" starts Ray before the clock and stops it after, to separate Ray's fixed cost
from its per-trial cost. Modes are interleaved when repeated; the table shows medians.

    python benchmarks/sweep_speedup.py                    # 50k steps per trial
    python benchmarks/sweep_speedup.py --steps 8192 --modes local1,local2   # smoke test
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from typing import Any

import common

MODES = {
    "local1": ("local", 1, False),
    "local2": ("local", 2, False),
    "ray2": ("ray", 2, False),
    "ray2-warm": ("ray", 2, True),
}
LABELS = {
    "local1": "local pool",
    "local2": "local pool",
    "ray2": "ray (started by the sweep)",
    "ray2-warm": "ray (already running)",
}


def make_spec(steps: int) -> Any:
    from trpo.presets import preset
    from trpo.sweep import SweepSpec

    return SweepSpec(
        preset("CartPole-v1", total_steps=steps, torch_threads=1),
        {"delta": [0.01, 0.02], "alpha": [0.5, 0.8]},
        seeds=[0, 1],
        name="sweep speedup benchmark",
    )


def run_mode(mode: str, steps: int) -> dict[str, Any]:
    """One timed sweep in this mode; its per-trial final returns and training seconds."""
    from trpo.store import load_metrics
    from trpo.sweep import run_sweep, sweep_trials

    backend, workers, warm = MODES[mode]
    spec = make_spec(steps)
    runs_dir = tempfile.mkdtemp(prefix="trpo-sweep-bench-")
    ray_connected = False
    try:
        if warm:
            from trpo.sweep import ray_backend

            ray_connected = ray_backend.connect(None, workers)
        with common.Stopwatch() as clock:
            result = run_sweep(spec, runs_dir, workers=workers, backend=backend)
        table = sweep_trials(runs_dir, result.sweep_id)
        train_s = sum(float(load_metrics(d)["wall_time_s"].iloc[-1]) for d in table["run_dir"] if d)
        return {
            "mode": mode,
            "backend": backend,
            "workers": workers,
            "ray_already_running": warm,
            "wall_s": clock.seconds,
            "counts": result.counts,
            "training_s": train_s,
            "final_returns": dict(zip(table["trial"], table["final_return"], strict=True)),
        }
    finally:
        if ray_connected:
            from trpo.sweep import ray_backend

            ray_backend.disconnect()
        shutil.rmtree(runs_dir, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=50_000, help="env steps per trial [50000]")
    parser.add_argument(
        "--modes",
        default=",".join(MODES),
        help=f"comma-separated modes out of {', '.join(MODES)} [all]",
    )
    parser.add_argument("--repeats", type=int, default=1, help="passes over the modes [1]")
    parser.add_argument("--output", help="JSON file [benchmarks/results/sweep_speedup.json]")
    args = parser.parse_args(argv)
    modes = common.parse_list(args.modes)
    unknown = [m for m in modes if m not in MODES]
    if unknown:
        parser.error(f"unknown mode(s): {', '.join(unknown)}")
    if args.repeats < 1 or args.steps < 1024:
        parser.error("--repeats must be >= 1 and --steps >= 1024")

    runs: list[dict[str, Any]] = []
    for repeat in range(args.repeats):
        for mode in modes:
            common.log(f"pass {repeat + 1}/{args.repeats}: {mode} ...")
            run = run_mode(mode, args.steps)
            common.log(f"  {mode}: {run['wall_s']:.1f} s, {run['counts']}")
            runs.append({"repeat": repeat, **run})

    wall = {m: common.median([r["wall_s"] for r in runs if r["mode"] == m]) for m in modes}
    reference = {r["mode"]: r["final_returns"] for r in runs if r["repeat"] == 0}
    first = reference[modes[0]]
    rows, summary = [], []
    for mode in modes:
        backend, workers, _ = MODES[mode]
        speedup = wall["local1"] / wall[mode] if "local1" in wall else None
        vs_local2 = (wall[mode] / wall["local2"] - 1) * 100 if "local2" in wall else None
        same = all(
            r["final_returns"] == first for r in runs if r["mode"] == mode
        )  # seeded trials: every mode must produce the very same returns
        finished = all(r["counts"] == {"finished": 8} for r in runs if r["mode"] == mode)
        rows.append(
            [
                LABELS[mode],
                workers,
                wall[mode],
                speedup,
                vs_local2 if backend == "ray" else None,
                "yes" if finished else "NO",
                "yes" if same else "NO",
            ]
        )
        summary.append(
            {
                "mode": mode,
                "label": LABELS[mode],
                "backend": backend,
                "workers": workers,
                "wall_s_median": wall[mode],
                "speedup_vs_local1": speedup,
                "overhead_vs_local2_pct": vs_local2,
                "all_finished": finished,
                "same_returns_as_first_mode": same,
            }
        )
    headers = [
        "backend",
        "workers",
        "wall time (s)",
        "speedup vs 1 worker",
        "Ray overhead vs local 2 workers (%)",
        "8/8 finished",
        "same returns",
    ]
    print(
        f"8-trial CartPole-v1 sweep (preset; delta 0.01,0.02 x alpha 0.5,0.8 x seeds 0,1), "
        f"{args.steps:,} steps per trial, median of {args.repeats}",
        flush=True,
    )
    print(common.markdown_table(headers, rows, digits=[0, 0, 1, 2, 1, 0, 0]), flush=True)
    path = common.write_results(
        "sweep_speedup",
        {"steps_per_trial": args.steps, "repeats": args.repeats, "summary": summary, "runs": runs},
        args.output,
    )
    common.log(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
