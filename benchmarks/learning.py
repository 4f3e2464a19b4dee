"""Learning quality of the presets: does each env reach its goal return?

For each env and seed, trains with trpo.session.TrainingSession into a run store (one run folder
per training, as the CLI would write it), then evaluates the final checkpoint with
trpo.evaluate.evaluate (deterministic policy, 10 episodes by default). An env passes when the
mean over seeds of the evaluation mean return reaches its goal.

    python benchmarks/learning.py --envs CartPole-v1 --seeds 0, --steps 4096
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import common

DEFAULT_ENVS = "CartPole-v1,Pendulum-v1,Acrobot-v1"
DEFAULT_SEEDS = "0,1,2"
DEFAULT_RUNS_DIR = common.RESULTS_DIR / "learning-runs"
GOALS = {
    "CartPole-v1": 500.0,
    "Pendulum-v1": -175.0,
    "Acrobot-v1": -85.0,
    "HalfCheetah-v5": 1800.0,
    "Hopper-v5": 3400.0,
}


def train_and_evaluate(job: dict[str, Any]) -> dict[str, Any]:
    """Runs in a worker process with one torch thread: one training session, then evaluation."""
    common.limit_threads(1)
    from trpo.config import preset
    from trpo.evaluate import evaluate
    from trpo.session import TrainingSession
    from trpo.store import RunStore

    common.warm_up_torch()  # the first Adam's one-time import stays out of the wall time
    overrides: dict[str, Any] = {"seed": job["seed"], "torch_threads": 1}
    if job["steps"]:
        overrides["total_steps"] = job["steps"]
    config = preset(job["env_id"], **overrides)
    last_returns: list[float] = []

    def on_record(record: Any) -> None:
        if record.return_mean is not None:
            last_returns.append(record.return_mean)

    with common.Stopwatch() as clock:
        session = TrainingSession.new(
            config,
            RunStore(job["runs_dir"]),
            name=f"learning benchmark {config.env_id} seed {config.seed}",
            tags={"benchmark": "learning", "seed": config.seed},
        )
        state = session.run(on_record=on_record)
    run_dir = session.run_folder.path
    result = evaluate(run_dir, job["episodes"])
    return {
        "run_dir": str(run_dir),
        "state": state,
        "env_steps": session.trainer.env_steps,
        "iterations": session.trainer.iteration,
        "wall_s": clock.seconds,
        "last_train_return": last_returns[-1] if last_returns else None,
        "eval_returns": result.returns,
        "eval_lengths": result.lengths,
        "eval_mean": result.mean_return,
        "eval_std": result.std_return,
        "config": config.to_dict(),
    }


def summarise(env_ids: list[str], runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for env_id in env_ids:
        mine = [r for r in runs if r["env_id"] == env_id]
        done = [r for r in mine if r.get("error") is None]
        per_seed = {r["seed"]: r.get("eval_mean") for r in mine}
        mean = common.mean([r["eval_mean"] for r in done]) if done else None
        goal = GOALS.get(env_id)
        # A failed training fails the env: its goal was not shown to be reached.
        complete = bool(done) and len(done) == len(mine)
        passed = None if goal is None else complete and mean >= goal
        steps = sorted({r["env_steps"] for r in done})
        rows.append(
            {
                "env_id": env_id,
                "seeds": [r["seed"] for r in mine],
                "env_steps": (steps[0] if len(steps) == 1 else steps) if steps else None,
                "eval_mean_per_seed": per_seed,
                "eval_mean": mean,
                "goal": goal,
                "passed": passed,
                "failed_seeds": [r["seed"] for r in mine if r.get("error") is not None],
            }
        )
    return rows


def print_table(rows: list[dict[str, Any]]) -> None:
    table = []
    for r in rows:
        per_seed = "; ".join(
            f"{seed}: {'failed' if value is None else format(value, '.1f')}"
            for seed, value in r["eval_mean_per_seed"].items()
        )
        steps = r["env_steps"]
        table.append(
            [
                r["env_id"],
                ",".join(str(s) for s in r["seeds"]),
                steps if not isinstance(steps, list) else "/".join(f"{s:,}" for s in steps),
                per_seed,
                r["eval_mean"],
                r["goal"],
                "-" if r["passed"] is None else ("PASS" if r["passed"] else "FAIL"),
            ]
        )
    headers = [
        "env",
        "seeds",
        "steps",
        "eval mean return per seed",
        "mean over seeds",
        "goal",
        "pass",
    ]
    print(common.markdown_table(headers, table, digits=[0, 0, 0, 0, 1, 0, 0]), flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--envs", default=DEFAULT_ENVS, help=f"comma-separated env ids ({DEFAULT_ENVS})"
    )
    parser.add_argument(
        "--seeds",
        default=DEFAULT_SEEDS,
        help="comma-separated seeds, or N for seeds 0..N-1 ('7,' is seed 7 alone) (0,1,2)",
    )
    parser.add_argument(
        "--steps",
        type=int,
        default=None,
        help="env steps per training (default: the preset's total_steps)",
    )
    parser.add_argument(
        "--runs-dir",
        default=str(DEFAULT_RUNS_DIR),
        help="run store for the trainings (benchmarks/results/learning-runs)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="trainings in parallel, one process and one torch thread each (1)",
    )
    parser.add_argument("--episodes", type=int, default=10, help="evaluation episodes (10)")
    parser.add_argument(
        "--output",
        default=str(common.RESULTS_DIR / "learning.json"),
        help="JSON results file (benchmarks/results/learning.json)",
    )
    args = parser.parse_args(argv)
    if args.workers < 1 or args.episodes < 1:
        parser.error("--workers and --episodes must be at least 1")
    if args.steps is not None and args.steps < 1:
        parser.error("--steps must be at least 1")
    try:
        seeds = common.parse_seeds(args.seeds)
    except ValueError as exc:
        parser.error(f"--seeds: {exc}")
    env_ids = common.parse_list(args.envs)
    common.check_presets(parser, env_ids, args.steps)

    runs_dir = str(Path(args.runs_dir).resolve())
    jobs = [
        {
            "env_id": env_id,
            "seed": seed,
            "steps": args.steps,
            "runs_dir": runs_dir,
            "episodes": args.episodes,
        }
        for env_id in env_ids
        for seed in seeds
    ]
    common.set_thread_env(1)
    runs: list[dict[str, Any]] = []
    with common.process_pool(args.workers) as pool:
        futures = [(job, pool.submit(train_and_evaluate, job)) for job in jobs]
        common.log(f"{len(jobs)} trainings on {args.workers} worker(s), runs in {runs_dir}")
        for index, (job, future) in enumerate(futures, 1):
            label = f"[{index}/{len(jobs)}] {job['env_id']} seed {job['seed']}"
            try:
                result = future.result()
            except Exception as exc:  # one failed training must not lose the others
                common.log(f"{label}: FAILED {type(exc).__name__}: {exc}")
                runs.append({**job, "error": f"{type(exc).__name__}: {exc}"})
                continue
            runs.append({**job, **result, "error": None})
            common.log(
                f"{label}: {result['env_steps']:,} steps in {result['wall_s']:.1f} s, "
                f"eval {result['eval_mean']:.1f} +- {result['eval_std']:.1f}"
            )
    rows = summarise(env_ids, runs)
    print_table(rows)
    path = common.write_results(
        "learning",
        {"args": vars(args), "goals": GOALS, "summary": rows, "runs": runs},
        args.output,
    )
    common.log(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
