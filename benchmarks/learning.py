"""Learning quality: our TRPO against sb3-contrib's TRPO at equal env steps, seed by seed.

For each env and seed, ours (trpo.trainer.Trainer on the preset) and sb3-contrib's TRPO (the
preset mapped knob by knob, compare_sb3.sb3_kwargs) are trained with the same seed, interleaved
(ours s0, sb3 s0, ours s1, ...) on a pool of --workers processes, every job in a fresh
interpreter with one torch thread, and evaluated on 10 deterministic episodes (compare_sb3's
train_ours / train_sb3). Per env it reports both sides' evaluation returns per seed, the
difference of the means (ours - sb3) with a bootstrap 95% interval over seeds, the time and env
steps at which training first reached a threshold return, and whether our mean meets the goal of
the budget.

    python benchmarks/learning.py                                  # demo budget, every preset env
    python benchmarks/learning.py --envs CartPole-v1,Pendulum-v1 --seeds 0,1 --steps 8192  # smoke
    python benchmarks/learning.py --envs HalfCheetah-v5,Hopper-v5 --budget demo
    python benchmarks/learning.py --envs Hopper-v5 --budget full --impls ours   # published goals
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import as_completed
from typing import Any

import common
import compare_sb3
import numpy as np

DEFAULT_SEEDS = "0,1,2,3,4"
DEMO_STEPS = 100_000
IMPLS = {"ours": compare_sb3.IMPL_OURS, "sb3": compare_sb3.IMPL_SB3}
BOOTSTRAP_RESAMPLES = 10_000
BOOTSTRAP_SEED = 20_240_601

# Training return (mean over the episodes that finished in one iteration/rollout) that counts
# as "learned" for the time-to-threshold columns.
THRESHOLDS = {
    "CartPole-v1": 475.0,
    "Pendulum-v1": -200.0,
    "Acrobot-v1": -100.0,
    "HalfCheetah-v5": 1000.0,
    "Hopper-v5": 1000.0,
}
# Evaluation mean return (over seeds) our implementation should reach with each budget. The full
# goals are rl-zoo's published TRPO results; the demo ones are for 100k-step MuJoCo runs.
GOALS = {
    "demo": {"HalfCheetah-v5": 1600.0, "Hopper-v5": 1800.0},
    "full": {
        "Ant-v5": 4982.0,
        "HalfCheetah-v5": 4471.0,
        "Hopper-v5": 3618.0,
        "Walker2d-v5": 4933.0,
        "Swimmer-v5": 366.0,
        "Humanoid-v5": 810.0,
        "CartPole-v1": 500.0,
        "Pendulum-v1": -175.0,
        "Acrobot-v1": -83.0,
        "MountainCar-v0": -107.0,
        "MountainCarContinuous-v0": 92.0,
        "LunarLander-v3": 133.0,
        "LunarLanderContinuous-v3": 262.0,
        "BipedalWalker-v3": 182.0,
    },
}


# --- pure pieces (importable for checks) -----------------------------------------------------
def first_reached(
    points: Iterable[tuple[float, int, float | None]], threshold: float | None
) -> dict[str, Any] | None:
    """The first (seconds, env_steps, mean_return) point whose mean return is >= threshold.

    points are in training order, one per iteration/rollout; mean_return is None when no episode
    finished in it (such points never count). Returns {"seconds", "env_steps", "return"}, or None
    when the threshold is None or never reached.
    """
    if threshold is None:
        return None
    for seconds, env_steps, mean_return in points:
        if mean_return is not None and mean_return >= threshold:
            return {"seconds": float(seconds), "env_steps": int(env_steps), "return": mean_return}
    return None


def bootstrap_difference(
    ours: Sequence[float],
    theirs: Sequence[float],
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
    level: float = 0.95,
) -> tuple[float, float]:
    """Percentile bootstrap interval of mean(ours) - mean(theirs).

    Each resample draws len(ours) values of ours and len(theirs) of theirs with replacement,
    independently; the interval is the (1 - level)/2 and (1 + level)/2 percentiles of the
    resampled differences. Reproducible: numpy Generator seeded with `seed`.
    """
    a = np.asarray(ours, dtype=np.float64)
    b = np.asarray(theirs, dtype=np.float64)
    if a.size == 0 or b.size == 0:
        raise ValueError("both samples need at least one value")
    rng = np.random.default_rng(seed)
    mean_a = a[rng.integers(0, a.size, size=(resamples, a.size))].mean(axis=1)
    mean_b = b[rng.integers(0, b.size, size=(resamples, b.size))].mean(axis=1)
    tail = 100.0 * (1.0 - level) / 2.0
    low, high = np.percentile(mean_a - mean_b, [tail, 100.0 - tail])
    return float(low), float(high)


def verdict(interval: tuple[float, float] | None) -> str:
    """'below' when the whole interval of ours - sb3 lies below 0, else 'not below'."""
    if interval is None:
        return "-"
    return "below" if interval[1] < 0 else "not below"


def budget_steps(preset_steps: int, budget: str, override: int | None = None) -> int:
    """Env steps of one training: --steps if given, else the budget's."""
    if override is not None:
        return override
    return preset_steps if budget == "full" else min(DEMO_STEPS, preset_steps)


# --- one training, in a fresh process --------------------------------------------------------
def _rollout_callback(start: float, points: list[tuple[float, int, float | None]]) -> Any:
    """An sb3 callback appending (seconds since start, env steps, mean return of the episodes
    that finished in the rollout) to points at the end of every rollout."""
    from stable_baselines3.common.callbacks import BaseCallback

    class RolloutReturns(BaseCallback):
        def __init__(self) -> None:
            super().__init__()
            self.returns: list[float] = []

        def _on_step(self) -> bool:
            for info in self.locals["infos"]:
                if "episode" in info:
                    self.returns.append(float(info["episode"]["r"]))
            return True

        def _on_rollout_end(self) -> None:
            mean = float(np.mean(self.returns)) if self.returns else None
            points.append((time.perf_counter() - start, int(self.num_timesteps), mean))
            self.returns = []

    return RolloutReturns()


def train_job(job: dict[str, Any]) -> dict[str, Any]:
    """Runs in a fresh worker process: one training of job["impl"] plus its evaluation."""
    points: list[tuple[float, int, float | None]] = []
    if job["impl"] == compare_sb3.IMPL_OURS:

        def on_record(record: Any, seconds: float) -> None:
            # the clock at the end of this iteration's rollout, as sb3's _on_rollout_end reads it
            at = seconds - (record.iteration_time_s - record.time_collect_s)
            points.append((at, record.env_steps, record.return_mean))

        result = compare_sb3.train_ours(job, on_record=on_record)
    else:
        result = compare_sb3.train_sb3(job, lambda start: _rollout_callback(start, points))
        from trpo.presets import preset

        config = preset(job["env_id"], total_steps=job["steps"], seed=job["seed"], torch_threads=1)
        result["config"] = config.to_dict()
    result["threshold_reached"] = first_reached(points, job["threshold"])
    return result


# --- driver ----------------------------------------------------------------------------------
def run_jobs(jobs: list[dict[str, Any]], workers: int) -> list[dict[str, Any]]:
    """Every job on a pool of fresh processes; a failed job is logged and kept as an error."""
    runs: list[dict[str, Any]] = []
    with common.process_pool(workers, fresh=True) as pool:
        futures = {pool.submit(train_job, job): job for job in jobs}
        common.log(f"{len(jobs)} trainings on {workers} worker(s), one torch thread each")
        for done, future in enumerate(as_completed(futures), 1):
            job = futures[future]
            label = f"[{done}/{len(jobs)}] {job['env_id']} {job['impl']} seed {job['seed']}"
            try:
                result = future.result()
            except Exception as exc:  # one failed training must not lose the others
                common.log(f"{label}: FAILED {type(exc).__name__}: {exc}")
                runs.append({**job, "error": f"{type(exc).__name__}: {exc}"})
                continue
            runs.append({**job, **result, "error": None})
            reached = result["threshold_reached"]
            at = (
                ""
                if job["threshold"] is None
                else "; threshold not reached"
                if reached is None
                else f"; threshold at {reached['seconds']:.1f} s / {reached['env_steps']:,} steps"
            )
            common.log(
                f"{label}: eval {result['eval_mean']:.1f}, {result['env_steps']:,} steps "
                f"in {result['wall_s']:.1f} s{at}"
            )
    order = {(j["env_id"], j["impl"], j["seed"]): index for index, j in enumerate(jobs)}
    return sorted(runs, key=lambda r: order[(r["env_id"], r["impl"], r["seed"])])


def _impl_summary(runs: list[dict[str, Any]], threshold: float | None) -> dict[str, Any]:
    done = [r for r in runs if r["error"] is None]
    reached = [r["threshold_reached"] for r in done if r["threshold_reached"] is not None]
    return {
        "seeds": [r["seed"] for r in runs],
        "eval_mean_per_seed": {r["seed"]: r.get("eval_mean") for r in runs},
        "eval_mean": common.mean([r["eval_mean"] for r in done]) if done else None,
        "wall_s": common.mean([r["wall_s"] for r in done]) if done else None,
        "env_steps": sorted({r["env_steps"] for r in done}),
        "failed_seeds": [r["seed"] for r in runs if r["error"] is not None],
        "seeds_reached_threshold": len(reached) if threshold is not None else None,
        "seeds_done": len(done),
        "median_s_to_threshold": common.median([p["seconds"] for p in reached])
        if reached
        else None,
        "median_steps_to_threshold": common.median([p["env_steps"] for p in reached])
        if reached
        else None,
    }


def summarise(
    envs: dict[str, int], impls: list[str], runs: list[dict[str, Any]], args: Any
) -> list[dict[str, Any]]:
    rows = []
    for env_id, steps in envs.items():
        threshold = THRESHOLDS.get(env_id)
        sides = {
            impl: _impl_summary(
                [r for r in runs if r["env_id"] == env_id and r["impl"] == impl], threshold
            )
            for impl in impls
        }
        ours, sb3 = sides.get(compare_sb3.IMPL_OURS), sides.get(compare_sb3.IMPL_SB3)
        difference = interval = None
        if ours and sb3 and ours["eval_mean"] is not None and sb3["eval_mean"] is not None:
            values = [
                [v for v in side["eval_mean_per_seed"].values() if v is not None]
                for side in (ours, sb3)
            ]
            difference = ours["eval_mean"] - sb3["eval_mean"]
            interval = bootstrap_difference(*values)
        goal = GOALS[args.budget].get(env_id)
        at_budget = steps == budget_steps(args.preset_steps[env_id], args.budget)
        goal_met: str | None = None
        if goal is not None and ours is not None and at_budget:
            if ours["failed_seeds"] or ours["eval_mean"] is None:
                goal_met = "incomplete"
            else:
                goal_met = "yes" if ours["eval_mean"] >= goal else "no"
        rows.append(
            {
                "env_id": env_id,
                "steps": steps,
                "threshold": threshold,
                "impls": sides,
                "difference": difference,
                "interval_95": list(interval) if interval else None,
                "verdict": verdict(interval),
                "goal": goal,
                "goal_met": goal_met,
            }
        )
    return rows


def _per_seed(values: dict[int, float | None]) -> str:
    return ", ".join(
        f"{seed}: {'failed' if v is None else format(v, '.1f')}" for seed, v in values.items()
    )


def _to_threshold(side: dict[str, Any], threshold: float | None) -> tuple[str, str]:
    if threshold is None:
        return "-", "-"
    count = f"({side['seeds_reached_threshold']}/{side['seeds_done']})"
    if not side["seeds_reached_threshold"]:
        return f"not reached {count}", "-"
    return (
        f"{side['median_s_to_threshold']:.1f} s {count}",
        f"{round(side['median_steps_to_threshold']):,}",
    )


def print_tables(rows: list[dict[str, Any]]) -> None:
    detail = []
    for r in rows:
        for impl, side in r["impls"].items():
            seconds, steps = _to_threshold(side, r["threshold"])
            detail.append(
                [
                    r["env_id"],
                    r["steps"],
                    impl,
                    _per_seed(side["eval_mean_per_seed"]),
                    side["eval_mean"],
                    side["wall_s"],
                    "-" if r["threshold"] is None else f"{r['threshold']:g}",
                    seconds,
                    steps,
                ]
            )
    headers = [
        "env",
        "steps",
        "impl",
        "eval mean return per seed",
        "mean over seeds",
        "wall (s, mean)",
        "threshold",
        "time to threshold (median, seeds reached)",
        "env steps to threshold (median)",
    ]
    print(common.markdown_table(headers, detail, digits=[0, 0, 0, 0, 1, 1, 0, 0, 0]))
    print()
    table = []
    for r in rows:
        ours = r["impls"].get(compare_sb3.IMPL_OURS)
        sb3 = r["impls"].get(compare_sb3.IMPL_SB3)
        interval = r["interval_95"]
        table.append(
            [
                r["env_id"],
                ours["eval_mean"] if ours else None,
                sb3["eval_mean"] if sb3 else None,
                r["difference"],
                "-" if interval is None else f"[{interval[0]:.1f}, {interval[1]:.1f}]",
                r["verdict"],
                "-" if r["goal"] is None else f"{r['goal']:g}",
                r["goal_met"] or "-",
            ]
        )
    headers = [
        "env",
        "ours mean",
        "sb3-contrib mean",
        "ours - sb3",
        "bootstrap 95% interval",
        "verdict",
        "goal (ours)",
        "goal met",
    ]
    print(common.markdown_table(headers, table, digits=[0, 1, 1, 1, 0, 0, 0, 0]), flush=True)


def main(argv: list[str] | None = None) -> int:
    from trpo.config import ConfigError
    from trpo.presets import PRESETS, preset

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--envs", default=",".join(PRESETS), help="comma-separated env ids (every preset env)"
    )
    parser.add_argument(
        "--seeds",
        default=DEFAULT_SEEDS,
        help=f"comma-separated seeds, or N for seeds 0..N-1 ('7,' is seed 7 alone) "
        f"({DEFAULT_SEEDS})",
    )
    parser.add_argument(
        "--budget",
        choices=("demo", "full"),
        default="demo",
        help="demo: 100k steps (or the preset's total_steps if smaller); full: the preset's "
        "total_steps (rl-zoo's n_timesteps) (demo)",
    )
    parser.add_argument(
        "--steps", type=int, default=None, help="env steps per training, overriding --budget"
    )
    parser.add_argument(
        "--impls", default="ours,sb3", help="implementations to train: ours, sb3 or both (both)"
    )
    parser.add_argument(
        "--workers", type=int, default=2, help="trainings in parallel, one torch thread each (2)"
    )
    parser.add_argument("--episodes", type=int, default=10, help="evaluation episodes (10)")
    parser.add_argument(
        "--output",
        default=None,
        help="JSON results file (benchmarks/results/learning-<budget>.json, or "
        "learning-<N>-steps.json with --steps)",
    )
    args = parser.parse_args(argv)
    if args.workers < 1 or args.episodes < 1:
        parser.error("--workers and --episodes must be at least 1")
    if args.steps is not None and args.steps < 1:
        parser.error("--steps must be at least 1")
    try:
        seeds = list(dict.fromkeys(common.parse_seeds(args.seeds)))
    except ValueError as exc:
        parser.error(f"--seeds: {exc}")
    unknown = [i for i in common.parse_list(args.impls) if i not in IMPLS]
    if unknown or not common.parse_list(args.impls):
        parser.error(f"--impls: choose from {', '.join(IMPLS)}, got {args.impls!r}")
    impls = [IMPLS[i] for i in IMPLS if i in common.parse_list(args.impls)]
    env_ids = list(dict.fromkeys(common.parse_list(args.envs)))
    common.check_presets(parser, env_ids)
    args.preset_steps = {e: preset(e).total_steps for e in env_ids}
    envs = {e: budget_steps(args.preset_steps[e], args.budget, args.steps) for e in env_ids}
    for env_id, steps in envs.items():
        try:
            preset(env_id, total_steps=steps)
        except ConfigError as exc:
            parser.error(f"{env_id} with {steps:,} steps: {exc}")

    jobs = [
        {
            "env_id": env_id,
            "impl": impl,
            "seed": seed,
            "steps": steps,
            "threads": 1,
            "episodes": args.episodes,
            "extra": None,
            "threshold": THRESHOLDS.get(env_id),
        }
        for env_id, steps in envs.items()
        for seed in seeds
        for impl in impls
    ]
    common.set_thread_env(1)  # inherited by the spawned trainings
    runs = run_jobs(jobs, args.workers)
    rows = summarise(envs, impls, runs, args)
    print_tables(rows)
    label = args.budget if args.steps is None else f"{args.steps}-steps"
    path = common.write_results(
        f"learning-{label}",
        {
            "args": vars(args),
            "thresholds": THRESHOLDS,
            "goals": GOALS[args.budget],
            "bootstrap": {"resamples": BOOTSTRAP_RESAMPLES, "seed": BOOTSTRAP_SEED},
            "summary": rows,
            "runs": runs,
        },
        args.output,
    )
    common.log(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
