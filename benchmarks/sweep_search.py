"""Sweeps that search: TPE with the median pruner against a 16-configuration grid, and the
speed-up of 2 workers over 1.

The search space is the three trust-region knobs on the CartPole-v1 preset: delta (KL limit),
alpha (backtracking coefficient) and K (max_backtracks). The grid is 4 x 2 x 2 = 16
configurations, delta 0.002, 0.005, 0.02, 0.05 x alpha 0.5, 0.9 x K 3, 15; the TPE search gets
the same ranges as ranges: delta 0.002-0.05 (log), alpha 0.5-0.9, K 3-15 (whole numbers). Both
run every configuration with the same training seeds (--seeds, default 0,1) and the same budget
per run (--steps, default the preset's 100k), through trpo.sweep.run_sweep into a fresh
temporary run store, like a user would. TPE runs --trials configurations (default 12) with the
median pruner (--pruner-startup finished runs before it prunes, default 5, Optuna's; every run
gets --pruner-warmup iterations first, default 10 of the 98) once per sweep seed (the sampler's
seed, --sweep-seeds, default 0,1,2).

Measured, per search:
- score of a configuration: its final return as the sweep's results table gives it
  (trpo.sweep.results: a run's mean return over its last 10% of iterations, averaged over the
  configuration's finished seeds). Only configurations whose every seed finished count: a pruned
  run's return is partial, and a configuration scored by the seed that escaped pruning alone
  would be flattered. The best configuration of a search is the one with the highest score, as
  reported, not re-trained: both searches' bests are maxima of noisy scores (the grid's over 16
  configurations, TPE's over fewer, which if anything favours the grid). CartPole's return is
  capped at 500, so a best grid score of 500 puts the bar at 475; the table says how many grid
  configurations clear the bar, i.e. how likely one random configuration is to clear it;
- env steps: the sum of env_steps of every run of the sweep (a pruned run counts what it
  trained, including the iteration or so it trains while the pruner's request reaches it);
- wall time of run_sweep.

Goal (issue "Sweeps that search", item 6): TPE + median pruner reaches a configuration within
5% of the grid's best (best TPE score >= 0.95 x best grid score) using at most 60% of the grid's
env steps, averaged over the sweep seeds (counted as met if every sweep seed reaches the bar
and the mean ratio of steps is <= 60%); and the grid with 2 workers runs >= 1.7x as fast as with
1 worker (the grid is run --speedup-repeats times with each, interleaved: 2, 1, then pairs 1, 2
and 2, 1 alternating; medians; every run must give the same returns, the trials being seeded).
The load average is recorded before and after every phase, and the cores a sweep got (CPU
seconds of the driver and its workers / wall seconds): on a shared machine the speed-up is
measured under whatever else runs.

    python benchmarks/sweep_search.py --speedup-repeats 2     # full run: 20-40 min on 2 cores
    python benchmarks/sweep_search.py --steps 30000 --pruner-warmup 3 \
        --output benchmarks/results/sweep_search-30k.json      # a budget CartPole does not cap
    python benchmarks/sweep_search.py --no-search --speedup-repeats 2   # the speed-up alone
    python benchmarks/sweep_search.py --quick      # smoke test: 4k steps, 1 seed, JSON to /tmp
"""

from __future__ import annotations

import argparse
import math
import os
import resource
import shutil
import sys
import tempfile
from typing import Any

import common

ENV_ID = "CartPole-v1"
KNOB_NAMES = ("delta", "alpha", "max_backtracks")
GRID = {"delta": [0.002, 0.005, 0.02, 0.05], "alpha": [0.5, 0.9], "max_backtracks": [3, 15]}
RANGES = {
    "delta": (0.002, 0.05, True),
    "alpha": (0.5, 0.9, False),
    "max_backtracks": (3, 15, False),
}
WITHIN = 0.95  # "within 5% of the best of the grid"
STEP_GOAL = 0.60  # "at most 60% of the grid's env steps"
SPEEDUP_GOAL = 1.7
QUICK = {
    "steps": 4096,
    "seeds": "0,",
    "trials": 4,
    "sweep_seeds": "0,",
    "pruner_startup": 2,
    "pruner_warmup": 1,
}


def load() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def cpu_seconds() -> float:
    """CPU seconds of this process and its ended children (the sweep's pool workers)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def base_config(steps: int) -> Any:
    from trpo.presets import preset

    return preset(ENV_ID, total_steps=steps, torch_threads=1)


def grid_spec(steps: int, seeds: list[int]) -> Any:
    from trpo.sweep import SweepSpec

    return SweepSpec(base_config(steps), dict(GRID), seeds=seeds, name="sweep_search grid")


def tpe_spec(
    steps: int, seeds: list[int], trials: int, sample_seed: int, startup: int, warmup: int
) -> Any:
    from trpo.sweep import KnobRange, SweepSpec

    ranges = {k: KnobRange(low, high, log) for k, (low, high, log) in RANGES.items()}
    return SweepSpec(
        base_config(steps),
        ranges,
        seeds=seeds,
        search="tpe",
        trials=trials,
        sample_seed=sample_seed,
        pruner="median",
        pruner_startup=startup,
        pruner_warmup=warmup,
        name=f"sweep_search tpe {sample_seed}",
    )


def run_search(spec: Any, runs_dir: str, workers: int) -> dict[str, Any]:
    """One timed sweep; its runs, its configurations' scores and its best configuration."""
    from trpo.store import load_metrics
    from trpo.sweep import run_sweep, sweep_results, sweep_trials

    load_before = load()
    cpu_before = cpu_seconds()
    with common.Stopwatch() as clock:
        result = run_sweep(spec, runs_dir, workers=workers)
    cores = (cpu_seconds() - cpu_before) / clock.seconds
    load_after = load()
    trials = sweep_trials(runs_dir, result.sweep_id)
    configs = sweep_results(runs_dir, result.sweep_id)
    n_seeds = len(spec.seeds)
    runs = []
    training_s = 0.0
    for row in trials.to_dict("records"):
        if row["run_dir"]:
            frame = load_metrics(row["run_dir"])
            training_s += float(frame["wall_time_s"].iloc[-1]) if len(frame) else 0.0
        runs.append(
            {
                "trial": row["trial"],
                "seed": row["seed"],
                **{k: row[k] for k in KNOB_NAMES},
                "status": row["status"],
                "iterations": int(row["iterations"]),
                "env_steps": int(row["env_steps"]),
                "final_return": row["final_return"],
            }
        )
    scored = []
    for row in configs.to_dict("records"):
        scored.append(
            {
                **{k: row[k] for k in KNOB_NAMES},
                "n_runs": int(row["n_trials"]),
                "n_seeds_finished": int(row["n_seeds"]),
                "n_pruned": int(row["n_pruned"]),
                "score": row["final_return_mean"] if row["n_seeds"] >= n_seeds else math.nan,
                "final_return_mean_finished": row["final_return_mean"],
            }
        )
    complete = [c for c in scored if math.isfinite(c["score"])]
    best = max(complete, key=lambda c: c["score"]) if complete else None
    return {
        "sweep_id": result.sweep_id,
        "search": spec.search,
        "sample_seed": spec.sample_seed,
        "workers": result.workers,
        "wall_s": clock.seconds,
        "cores_used": cores,
        "load_before": load_before,
        "load_after": load_after,
        "counts": result.counts,
        "configurations": len(scored),
        "env_steps": sum(r["env_steps"] for r in runs),
        "training_s": training_s,
        "best": best,
        "configs": scored,
        "runs": runs,
    }


def knobs_label(config: dict[str, Any] | None) -> str:
    if config is None:
        return "-"
    return f"δ={config['delta']:.4g} α={config['alpha']:.3g} K={config['max_backtracks']}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=100_000, help="env steps per run [100000]")
    parser.add_argument(
        "--seeds", default="0,1", help="training seeds of every configuration [0,1]"
    )
    parser.add_argument("--trials", type=int, default=12, help="TPE configurations [12]")
    parser.add_argument("--sweep-seeds", default="0,1,2", help="TPE sampler seeds [0,1,2]")
    parser.add_argument(
        "--pruner-startup", type=int, default=5, help="finished runs before pruning [5]"
    )
    parser.add_argument(
        "--pruner-warmup", type=int, default=10, help="iterations every run gets [10]"
    )
    parser.add_argument("--workers", type=int, default=2, help="workers of the searches [2]")
    parser.add_argument(
        "--speedup-repeats",
        type=int,
        default=1,
        help="grids with 1 and with 2 workers, interleaved (0: no speed-up figure) [1]",
    )
    parser.add_argument(
        "--no-search", action="store_true", help="the grids only (the speed-up), no TPE sweeps"
    )
    parser.add_argument("--quick", action="store_true", help="smoke test: tiny budget, 1 seed")
    parser.add_argument("--keep-runs", help="keep the run store in this folder (default: a temp)")
    parser.add_argument("--output", help="JSON file [benchmarks/results/sweep_search.json]")
    args = parser.parse_args(argv)
    if args.quick:
        for key, value in QUICK.items():
            setattr(args, key, value)
        if not args.output:  # a smoke run does not replace the published figures
            args.output = os.path.join(tempfile.gettempdir(), "sweep_search-quick.json")
    try:
        seeds = common.parse_seeds(args.seeds)
        sweep_seeds = common.parse_seeds(args.sweep_seeds)
    except ValueError as exc:
        parser.error(str(exc))
    if not 1 <= args.trials <= 16:
        parser.error("--trials must be from 1 to 16 (the grid's size)")
    if args.speedup_repeats < 0:
        parser.error("--speedup-repeats must be >= 0")
    if not 1 <= args.workers <= 2:
        parser.error("--workers must be 1 or 2 (this is a 2-core benchmark)")
    common.check_presets(parser, [ENV_ID], args.steps)
    common.set_thread_env(1)

    load_start = load()
    runs_dir = args.keep_runs or tempfile.mkdtemp(prefix="trpo-sweep-search-")
    os.makedirs(runs_dir, exist_ok=True)
    try:
        # the grid with --workers (the searches' baseline), and the speed-up's grids: pairs of
        # 1 and 2 workers, the order alternating from pair to pair
        order = [args.workers]
        if args.speedup_repeats and args.workers == 2:
            for repeat in range(args.speedup_repeats):
                order += [1] if repeat == 0 else ([1, 2] if repeat % 2 else [2, 1])
        grids: list[dict[str, Any]] = []
        for index, workers in enumerate(order):
            common.log(f"load average {load()}; grid {index + 1}/{len(order)}, {workers} workers")
            run = run_search(grid_spec(args.steps, seeds), runs_dir, workers)
            common.log(
                f"  {run['wall_s']:.1f} s, {run['counts']}, {run['cores_used']:.2f} cores used, "
                f"load after {run['load_after']}"
            )
            grids.append(run)
        grid = grids[0]
        tpes = []
        for sample_seed in [] if args.no_search else sweep_seeds:
            common.log(f"TPE + median pruner, sweep seed {sample_seed} ...")
            spec = tpe_spec(
                args.steps,
                seeds,
                args.trials,
                sample_seed,
                args.pruner_startup,
                args.pruner_warmup,
            )
            tpe = run_search(spec, runs_dir, args.workers)
            common.log(f"  tpe {sample_seed}: {tpe['wall_s']:.1f} s, {tpe['counts']}")
            tpes.append(tpe)
    finally:
        if not args.keep_runs:
            shutil.rmtree(runs_dir, ignore_errors=True)
    load_end = load()

    # --- the searches ------------------------------------------------------------------------
    grid_best = grid["best"]["score"] if grid["best"] else math.nan
    bar = WITHIN * grid_best
    grid_clear = sum(1 for c in grid["configs"] if c["score"] >= bar)
    per_run = grid["env_steps"] / max(1, len(grid["runs"]))
    rows, summary = [], []
    for search in [grid, *tpes]:
        best = search["best"]
        score = best["score"] if best else math.nan
        ratio = search["env_steps"] / grid["env_steps"]
        reached = bool(best) and score >= bar
        counts = search["counts"]
        search.update(steps_vs_grid=ratio, reached=reached)
        is_grid = search is grid
        rows.append(
            [
                "grid" if is_grid else "TPE + median",
                "-" if is_grid else str(search["sample_seed"]),
                search["configurations"],
                f"{counts.get('finished', 0)} / {counts.get('pruned', 0)}",
                search["env_steps"],
                f"{ratio:.0%}",
                knobs_label(best),
                score,
                "(the bar)" if is_grid else ("yes" if reached else "NO"),
                search["wall_s"],
            ]
        )
        summary.append(
            {
                "search": "grid" if is_grid else "tpe",
                "sample_seed": None if is_grid else search["sample_seed"],
                "configurations": search["configurations"],
                "counts": counts,
                "env_steps": search["env_steps"],
                "steps_vs_grid": ratio,
                "steps_vs_grid_unpruned": len(search["runs"]) * per_run / grid["env_steps"],
                "best": best,
                "best_score": score,
                "within_5pct_of_grid_best": None if is_grid else reached,
                "wall_s": search["wall_s"],
            }
        )
    mean_ratio = common.mean([t["steps_vs_grid"] for t in tpes])
    mean_best = common.mean([t["best"]["score"] if t["best"] else math.nan for t in tpes])
    n_reached = sum(1 for t in tpes if t["reached"])
    search_goal = bool(tpes) and n_reached == len(tpes) and mean_ratio <= STEP_GOAL

    seeds_text = ",".join(str(s) for s in seeds)
    print(
        f"{ENV_ID} preset, {args.steps:,} steps per run, training seeds {seeds_text} per "
        f"configuration; grid 4x2x2 = 16 configurations (δ {GRID['delta']}, α {GRID['alpha']}, "
        f"K {GRID['max_backtracks']}); TPE: {args.trials} configurations over the same ranges, "
        f"median pruner (startup {args.pruner_startup} runs, warmup {args.pruner_warmup} "
        f"iterations), {args.workers} workers",
        flush=True,
    )
    headers = [
        "search",
        "sweep seed",
        "configs",
        "runs finished / pruned",
        "env steps",
        "steps vs grid",
        "best configuration",
        "best final return",
        "within 5% of grid best",
        "wall (s)",
    ]
    print(common.markdown_table(headers, rows, digits=[0, 0, 0, 0, 0, 0, 0, 1, 0, 1]))
    if tpes:
        print(
            f"\nBar: 0.95 x {grid_best:.1f} = {bar:.1f}; {grid_clear} of 16 grid configurations "
            f"clear it. TPE mean over {len(tpes)} sweep seeds: steps {mean_ratio:.0%} of the "
            f"grid's (goal <= {STEP_GOAL:.0%}), best final return {mean_best:.1f}; {n_reached} "
            f"of {len(tpes)} seeds within 5%. Goal {'met' if search_goal else 'NOT met'}.",
            flush=True,
        )
    print("\nGrid, every configuration (best first):")
    grid_rows = [
        [
            c["delta"],
            c["alpha"],
            c["max_backtracks"],
            c["score"],
            "yes" if c["score"] >= bar else "",
        ]
        for c in grid["configs"]
    ]
    print(
        common.markdown_table(
            ["δ", "α", "K", "final return (mean over seeds)", "within 5%"],
            grid_rows,
            digits=[3, 2, 0, 1, 0],
        )
    )

    # --- the speed-up --------------------------------------------------------------------------
    speedup = None
    same = None
    if {g["workers"] for g in grids} == {1, 2}:
        wall = {w: common.median([g["wall_s"] for g in grids if g["workers"] == w]) for w in (1, 2)}
        speedup = wall[1] / wall[2]
        returns = {r["trial"]: r["final_return"] for r in grid["runs"]}
        same = all({r["trial"]: r["final_return"] for r in g["runs"]} == returns for g in grids)
        speed_rows = [
            [
                g["workers"],
                g["wall_s"],
                g["training_s"],
                g["cores_used"],
                wall[1] / g["wall_s"],
                f"{g['load_before'][0]:.2f} / {g['load_after'][0]:.2f}"
                if g["load_before"]
                else "-",
            ]
            for g in sorted(grids, key=lambda g: g["workers"])
        ]
        print(
            f"\nSpeed-up: the grid ({len(grid['runs'])} runs) with 1 and 2 workers, "
            f"{args.speedup_repeats} time(s) each:"
        )
        print(
            common.markdown_table(
                [
                    "workers",
                    "wall (s)",
                    "training s (sum over runs)",
                    "cores used (CPU s / wall s)",
                    "1-worker median / this",
                    "load 1 min before / after",
                ],
                speed_rows,
                digits=[0, 1, 1, 2, 2, 0],
            )
        )
        print(
            f"\nSpeed-up (medians) {speedup:.2f}x (goal >= {SPEEDUP_GOAL}x: "
            f"{'met' if speedup >= SPEEDUP_GOAL else 'NOT met'}); same returns: "
            f"{'yes' if same else 'NO'}.",
            flush=True,
        )
    print(f"Load average at start {load_start}, at end {load_end}.", flush=True)

    path = common.write_results(
        "sweep_search",
        {
            "env": ENV_ID,
            "steps_per_run": args.steps,
            "training_seeds": seeds,
            "grid": GRID,
            "ranges": {k: {"low": lo, "high": hi, "log": lg} for k, (lo, hi, lg) in RANGES.items()},
            "tpe_trials": args.trials,
            "sweep_seeds": sweep_seeds,
            "pruner": {
                "kind": "median",
                "startup": args.pruner_startup,
                "warmup": args.pruner_warmup,
            },
            "workers": args.workers,
            "quick": args.quick,
            "load_average_start": load_start,
            "load_average_end": load_end,
            "grid_best": grid["best"],
            "bar": bar,
            "grid_configs_within_bar": grid_clear,
            "tpe_mean_steps_vs_grid": mean_ratio,
            "tpe_mean_best_score": mean_best,
            "tpe_seeds_within_5pct": n_reached,
            "search_goal_met": search_goal if tpes else None,
            "speedup": speedup,
            "speedup_same_returns": same,
            "speedup_goal_met": None if speedup is None else speedup >= SPEEDUP_GOAL,
            "summary": summary,
            "speedup_repeats": args.speedup_repeats,
            "sweeps": [*grids, *tpes],
        },
        args.output,
    )
    common.log(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
