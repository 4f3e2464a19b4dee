"""How close the trainer comes to the speed limit set by the environment itself.

For each env, in a fresh spawned interpreter:

1. raw stepping: THE SAME vector env the trainer uses (trpo.envs.make_vector_env(env_id, n_envs,
   "sync") with the preset's n_envs, SAME_STEP autoreset) stepped with random actions sampled
   into an array beforehand (no Box.sample per step); env steps / wall time of the step loop,
   median over --repeats;
2. the trainer: trpo.trainer.Trainer with the env's preset; env steps / wall time of iterating
   Trainer.run() over the whole training (construction excluded), and the mean per-iteration
   time split from the IterationRecords.

    python benchmarks/raw_stepping.py --envs CartPole-v1 --raw-steps 20000 --train-steps 4096
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import common

DEFAULT_ENVS = "CartPole-v1,Pendulum-v1,HalfCheetah-v5,Hopper-v5"
RAW_STEPS = {"classic": 100_000, "mujoco": 50_000}
TRAIN_STEPS = {"classic": 100_000, "mujoco": 50_000}
WARMUP_STEPS = 200  # vector steps before the clock starts (first-call costs)
SPLIT_FIELDS = (
    ("collect", "time_collect_s"),
    ("advantages", "time_advantages_s"),
    ("CG", "time_cg_s"),
    ("line search", "time_linesearch_s"),
    ("value fit", "time_value_s"),
)


def _kind(env_id: str) -> str:
    return "classic" if env_id in common.CLASSIC else "mujoco"


def raw_steps_per_s(env_id: str, n_envs: int, steps: int, seed: int) -> float:
    """Env steps per second of the trainer's vector env under pre-sampled random actions."""
    import numpy as np

    from trpo.envs import make_vector_env

    envs, space = make_vector_env(env_id, n_envs, "sync")
    try:
        rng = np.random.default_rng(seed)
        vector_steps = max(1, steps // n_envs)
        total = vector_steps + WARMUP_STEPS
        if space.discrete:
            actions = rng.integers(0, space.act_dim, size=(total, n_envs))
        else:
            actions = rng.uniform(
                space.action_low, space.action_high, size=(total, n_envs, space.act_dim)
            )
        step = envs.step
        envs.reset(seed=seed)
        for t in range(WARMUP_STEPS):
            step(actions[t])
        with common.Stopwatch() as clock:
            for t in range(WARMUP_STEPS, total):
                step(actions[t])
    finally:
        envs.close()
    return vector_steps * n_envs / clock.seconds


def measure_env(job: dict[str, Any]) -> dict[str, Any]:
    """Runs in a fresh process: raw stepping (repeats), then one training."""
    common.limit_threads(job["threads"])
    from trpo.presets import preset
    from trpo.trainer import Trainer

    common.warm_up_torch()
    env_id = job["env_id"]
    config = preset(env_id, seed=0, torch_threads=job["threads"])
    raw = [
        raw_steps_per_s(env_id, config.n_envs, job["raw_steps"], seed=r)
        for r in range(job["repeats"])
    ]
    result: dict[str, Any] = {
        "n_envs": config.n_envs,
        "raw_steps": (job["raw_steps"] // config.n_envs) * config.n_envs,
        "raw_steps_per_s_runs": raw,
        "raw_steps_per_s": common.median(raw),
    }
    if job["train_steps"] <= 0:
        return result

    config = config.replace(total_steps=job["train_steps"])
    records = []
    with common.Stopwatch() as construct:
        trainer = Trainer(config)
    try:
        with common.Stopwatch() as clock:
            for record in trainer.run():
                records.append(record)
        env_steps = trainer.env_steps
    finally:
        trainer.close()
    n = len(records)
    split = {key: sum(getattr(r, key) for r in records) / n for _, key in SPLIT_FIELDS}
    iteration = sum(r.iteration_time_s for r in records) / n
    collect_total = sum(r.time_collect_s for r in records)
    result.update(
        {
            "trainer_env_steps": env_steps,
            "train_construct_s": construct.seconds,
            "train_wall_s": clock.seconds,
            "trainer_steps_per_s": env_steps / clock.seconds,
            "collect_steps_per_s": env_steps / collect_total if collect_total > 0 else None,
            "iterations": n,
            "steps_per_iteration": config.steps_per_iteration,
            "mean_iteration_s": iteration,
            "mean_split_s": split,
            "mean_other_s": iteration - sum(split.values()),
            "accepted_fraction": sum(r.step_accepted for r in records) / n,
        }
    )
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--envs", default=DEFAULT_ENVS, help=f"comma-separated env ids ({DEFAULT_ENVS})"
    )
    parser.add_argument(
        "--raw-steps",
        type=int,
        default=None,
        help="env steps of each raw-stepping measurement (100000 classic, 50000 MuJoCo)",
    )
    parser.add_argument(
        "--train-steps",
        type=int,
        default=None,
        help="env steps of the training (100000 classic, 50000 MuJoCo); 0 skips the trainer",
    )
    parser.add_argument(
        "--repeats", type=int, default=3, help="raw-stepping measurements, median reported (3)"
    )
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1)")
    parser.add_argument(
        "--output",
        default=str(common.RESULTS_DIR / "raw_stepping.json"),
        help="JSON results file (benchmarks/results/raw_stepping.json)",
    )
    args = parser.parse_args(argv)
    if args.repeats < 1 or args.threads < 1:
        parser.error("--repeats and --threads must be at least 1")
    if args.raw_steps is not None and args.raw_steps < 1:
        parser.error("--raw-steps must be at least 1")
    if args.train_steps is not None and args.train_steps < 0:
        parser.error("--train-steps must be 0 (skip) or more")

    common.check_presets(parser, common.parse_list(args.envs), args.train_steps or None)
    common.set_thread_env(args.threads)
    results: list[dict[str, Any]] = []
    for env_id in common.parse_list(args.envs):
        kind = _kind(env_id)
        job = {
            "env_id": env_id,
            "raw_steps": args.raw_steps or RAW_STEPS[kind],
            "train_steps": TRAIN_STEPS[kind] if args.train_steps is None else args.train_steps,
            "repeats": args.repeats,
            "threads": args.threads,
        }
        common.log(
            f"{env_id}: raw stepping {job['raw_steps']:,} x {job['repeats']}, "
            f"training {job['train_steps']:,} steps"
        )
        result = common.run_in_fresh_process(measure_env, job)
        results.append({**job, **result})
        message = f"{env_id}: raw {result['raw_steps_per_s']:,.0f} steps/s"
        if "trainer_steps_per_s" in result:
            message += f", trainer {result['trainer_steps_per_s']:,.0f} steps/s"
        common.log(message)

    speed_rows = []
    for r in results:
        trainer = r.get("trainer_steps_per_s")
        ratio = 100.0 * trainer / r["raw_steps_per_s"] if trainer else None
        speed_rows.append([r["env_id"], r["raw_steps_per_s"], trainer, ratio])
        r["trainer_over_raw_pct"] = ratio
    print(
        common.markdown_table(
            ["env", "raw env steps/s", "trainer steps/s", "trainer / raw (%)"],
            speed_rows,
            digits=[0, 0, 0, 1],
        )
    )
    trained = [r for r in results if "mean_split_s" in r]
    if trained:
        headers = [
            "env",
            "iterations",
            "steps/iteration",
            *(f"{name} (ms)" for name, _ in SPLIT_FIELDS),
            "other (ms)",
            "iteration (ms)",
            "collect share (%)",
            "collect steps/s",
        ]
        rows = []
        for r in trained:
            split = r["mean_split_s"]
            rows.append(
                [
                    r["env_id"],
                    r["iterations"],
                    r["steps_per_iteration"],
                    *(1000 * split[key] for _, key in SPLIT_FIELDS),
                    1000 * r["mean_other_s"],
                    1000 * r["mean_iteration_s"],
                    100 * split["time_collect_s"] / r["mean_iteration_s"],
                    r["collect_steps_per_s"],
                ]
            )
        print("\nMean time per trainer iteration:\n")
        print(common.markdown_table(headers, rows, digits=[0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 0]))
    path = common.write_results("raw_stepping", {"args": vars(args), "envs": results}, args.output)
    common.log(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
