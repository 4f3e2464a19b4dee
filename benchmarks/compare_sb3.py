"""Speed and final return of this project's TRPO against sb3-contrib's TRPO, same hyperparameters.

For each env the preset (trpo.presets.preset) is mapped knob by knob onto sb3-contrib's TRPO, and
the two implementations are trained interleaved (ours seed 0, sb3 seed 0, ours seed 1, ...),
each training in a fresh spawned interpreter. The timed region is the training only:

  ours: Trainer(config) (which creates the vector env) + iterating Trainer.run()
  sb3:  make_vec_env (+ VecNormalize) + TRPO(...) + model.learn(total_timesteps)

Interpreter start, imports and torch's one-time lazy imports (the first Adam) are paid before
the clock starts, and the evaluation (10 deterministic episodes) after it stops.

    python benchmarks/compare_sb3.py --envs CartPole-v1 --steps 4096
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import math
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import common

DEFAULT_ENVS = "CartPole-v1,Pendulum-v1,HalfCheetah-v5"
DEFAULT_STEPS = {"HalfCheetah-v5": 100_000}  # everything else: 100k as well
FALLBACK_STEPS = 100_000
EVAL_SEED = 10_000

# Imported by every training process before the clock starts, whichever implementation it runs.
CHILD_IMPORTS = (
    "gymnasium",
    "sb3_contrib",
    "stable_baselines3.common.env_util",
    "stable_baselines3.common.evaluation",
    "stable_baselines3.common.vec_env",
    "trpo.evaluate",
    "trpo.store",
    "trpo.trainer",
)

IMPL_OURS = "ours"
IMPL_SB3 = "sb3-contrib"
IMPL_SB3_SDE = "sb3-contrib (zoo gSDE)"


# --- hyperparameter mapping ------------------------------------------------------------------
def sb3_kwargs(config: Any) -> dict[str, Any]:
    """sb3-contrib TRPO keyword arguments equal to our TRPOConfig's knobs.

    Our max_backtracks K tries candidates j = 0..K (K + 1 of them); sb3's line_search_max_iter
    counts candidates, hence K + 1. Our cg_residual_tol default (1e-10) is sb3's fixed value.
    sb3's Gaussian KL is averaged over the action dimensions d (trpo/presets.py explains), so for
    Box actions its target_kl is delta / d and its cg_damping is cg_damping / d: the same step.
    """
    from torch import nn

    activations = {"tanh": nn.Tanh, "relu": nn.ReLU, "elu": nn.ELU}
    hidden = list(config.hidden_sizes)
    d = action_dims(config.env_id)
    return dict(
        n_steps=config.steps_per_iteration // config.n_envs,
        batch_size=config.vf_minibatch,
        n_critic_updates=config.vf_epochs,
        learning_rate=config.vf_lr,
        cg_max_steps=config.cg_iters,
        cg_damping=config.cg_damping / d,
        gae_lambda=config.gae_lambda,
        gamma=config.gamma,
        target_kl=config.delta / d,
        line_search_shrinking_factor=config.alpha,
        line_search_max_iter=config.max_backtracks + 1,
        normalize_advantage=config.normalize_advantages,
        policy_kwargs=dict(
            net_arch=dict(pi=hidden, vf=list(hidden)),
            activation_fn=activations[config.activation],
            log_std_init=config.log_std_init,
        ),
    )


def action_dims(env_id: str) -> int:
    """Number of action dimensions sb3 averages its KL over: d for Box(d,), 1 for Discrete."""
    import gymnasium as gym

    env = gym.make(env_id)
    try:
        space = env.action_space
        return int(space.shape[0]) if isinstance(space, gym.spaces.Box) else 1
    finally:
        env.close()


def zoo_sde(env_id: str) -> dict[str, Any] | None:
    """rl-zoo3's gSDE settings for env_id (its -v4 entry for a -v5 id), or None if it uses none.

    Reads rl_zoo3/hyperparams/trpo.yml without importing rl_zoo3.
    """
    import yaml

    spec = importlib.util.find_spec("rl_zoo3")
    if spec is None or spec.origin is None:
        return None
    path = Path(spec.origin).parent / "hyperparams" / "trpo.yml"
    entries = yaml.safe_load(path.read_text())
    entry = entries.get(env_id) or entries.get(env_id.replace("-v5", "-v4")) or {}
    if not entry.get("use_sde"):
        return None
    return {"use_sde": True, "sde_sample_freq": int(entry.get("sde_sample_freq", -1))}


# --- one training, in a fresh process --------------------------------------------------------
def _prepare_child(threads: int) -> None:
    """Same imports, threads and warm caches for both implementations, before the clock."""
    common.limit_threads(threads)
    for module in CHILD_IMPORTS:
        importlib.import_module(module)
    # trpo.envs imports mujoco (to silence its log file) even for classic-control envs; importing
    # it here keeps that one-time import (0.1-0.3 s) out of our timed region, and silencing the
    # log here keeps sb3's MuJoCo envs from writing MUJOCO_LOG.TXT.
    common.quiet_mujoco_log()
    common.warm_up_torch()


def train_ours(
    job: dict[str, Any], on_record: Callable[[Any, float], None] | None = None
) -> dict[str, Any]:
    """on_record(record, seconds since the clock started), after each iteration (timed)."""
    _prepare_child(job["threads"])
    from trpo.evaluate import evaluate
    from trpo.presets import preset
    from trpo.store import RunStore
    from trpo.trainer import Trainer

    config = preset(
        job["env_id"], total_steps=job["steps"], seed=job["seed"], torch_threads=job["threads"]
    )
    iterations = accepted = 0
    last_return = None
    with common.Stopwatch() as total:
        with common.Stopwatch() as construct:
            trainer = Trainer(config)
        for record in trainer.run():
            iterations += 1
            accepted += record.step_accepted
            if record.return_mean is not None:
                last_return = record.return_mean
            if on_record is not None:
                on_record(record, time.perf_counter() - total.start)
    try:
        state = trainer.state()
        env_steps = trainer.env_steps
    finally:
        trainer.close()
    with tempfile.TemporaryDirectory(prefix="compare-sb3-") as tmp:
        run = RunStore(tmp).create(config, name="compare_sb3", tags={"benchmark": "compare_sb3"})
        run.save_checkpoint(state.tensors, state.meta)
        result = evaluate(run.path, job["episodes"], seed=EVAL_SEED)
    return {
        "wall_s": total.seconds,
        "construct_s": construct.seconds,
        "env_steps": env_steps,
        "iterations": iterations,
        "accepted_steps": accepted,
        "last_train_return": last_return,  # mean over the last iteration's episodes
        "eval_returns": result.returns,
        "eval_mean": result.mean_return,
        "config": config.to_dict(),
    }


def train_sb3(
    job: dict[str, Any], make_callback: Callable[[float], Any] | None = None
) -> dict[str, Any]:
    """make_callback(perf_counter start of the clock) -> an sb3 callback for model.learn."""
    _prepare_child(job["threads"])
    import numpy as np
    from sb3_contrib import TRPO
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import VecNormalize

    from trpo.presets import preset

    config = preset(
        job["env_id"], total_steps=job["steps"], seed=job["seed"], torch_threads=job["threads"]
    )
    kwargs = sb3_kwargs(config)
    kwargs.update(job.get("extra") or {})
    normalize = config.normalize_observations or config.normalize_rewards
    with common.Stopwatch() as total:
        with common.Stopwatch() as construct:
            env = make_vec_env(config.env_id, n_envs=config.n_envs, seed=config.seed)
            if normalize:
                env = VecNormalize(
                    env,
                    norm_obs=config.normalize_observations,
                    norm_reward=config.normalize_rewards,
                    gamma=config.gamma,
                )
            model = TRPO("MlpPolicy", env, seed=config.seed, device="cpu", verbose=0, **kwargs)
        callback = make_callback(total.start) if make_callback is not None else None
        model.learn(total_timesteps=config.total_steps, callback=callback)

    obs_rms = env.obs_rms if normalize and config.normalize_observations else None
    returns = evaluate_sb3(model, config.env_id, obs_rms, job["episodes"])
    last = [info["r"] for info in model.ep_info_buffer]
    env.close()
    return {
        "wall_s": total.seconds,
        "construct_s": construct.seconds,
        "env_steps": int(model.num_timesteps),
        "iterations": int(model._n_updates),
        "ep_rew_mean": float(np.mean(last)) if last else None,  # last <= 100 training episodes
        "eval_returns": returns,
        "eval_mean": float(np.mean(returns)),
        "sb3_kwargs": {k: v for k, v in kwargs.items() if k != "policy_kwargs"},
        "sb3_policy_kwargs": {
            "net_arch": kwargs["policy_kwargs"]["net_arch"],
            "activation_fn": kwargs["policy_kwargs"]["activation_fn"].__name__,
            "log_std_init": kwargs["policy_kwargs"]["log_std_init"],
        },
    }


def evaluate_sb3(model: Any, env_id: str, obs_rms: Any, episodes: int) -> list[float]:
    """sb3's deterministic policy on exactly the episodes trpo.evaluate.evaluate plays (episode i
    reset with seed EVAL_SEED + i, same step cap), observations normalised as VecNormalize does
    with the frozen training statistics: both implementations face the same start states."""
    import gymnasium as gym
    import numpy as np

    from trpo.evaluate import episode_step_cap

    env = gym.make(env_id)
    returns = []
    try:
        cap = episode_step_cap(env)
        for i in range(episodes):
            obs, _ = env.reset(seed=EVAL_SEED + i)
            total, length, done = 0.0, 0, False
            while not done and length < cap:
                if obs_rms is not None:  # VecNormalize.normalize_obs, clip_obs = 10
                    obs = np.clip((obs - obs_rms.mean) / np.sqrt(obs_rms.var + 1e-8), -10, 10)
                action, _ = model.predict(obs, deterministic=True)  # clipped to the bounds
                obs, reward, terminated, truncated, _ = env.step(action)
                total += float(reward)
                length += 1
                done = terminated or truncated
            returns.append(total)
    finally:
        env.close()
    return returns


TRAINERS = {IMPL_OURS: train_ours, IMPL_SB3: train_sb3, IMPL_SB3_SDE: train_sb3}


# --- driver ----------------------------------------------------------------------------------
def build_jobs(args: argparse.Namespace) -> list[dict[str, Any]]:
    jobs = []
    for env_id in common.parse_list(args.envs):
        steps = args.steps or DEFAULT_STEPS.get(env_id, FALLBACK_STEPS)
        impls: list[tuple[str, dict[str, Any] | None]] = [(IMPL_OURS, None), (IMPL_SB3, None)]
        if args.sb3_zoo_sde:
            sde = zoo_sde(env_id)
            if sde is None:
                common.log(f"{env_id}: rl-zoo uses no gSDE here; no gSDE run")
            else:
                impls.append((IMPL_SB3_SDE, sde))
        for repeat in range(args.repeats):
            for seed in args.seed_list:
                for impl, extra in impls:
                    jobs.append(
                        dict(
                            env_id=env_id,
                            impl=impl,
                            seed=seed,
                            repeat=repeat,
                            steps=steps,
                            threads=args.threads,
                            episodes=args.episodes,
                            extra=extra,
                        )
                    )
    return jobs


def summarise(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (env, impl): wall = mean over seeds of the median over repeats."""
    rows: list[dict[str, Any]] = []
    keys = list(dict.fromkeys((r["env_id"], r["impl"]) for r in runs))
    for env_id, impl in keys:
        mine = [r for r in runs if r["env_id"] == env_id and r["impl"] == impl]
        seeds = sorted({r["seed"] for r in mine})
        walls, steps, returns, per_seed = [], [], [], {}
        for seed in seeds:
            of_seed = [r for r in mine if r["seed"] == seed]
            walls.append(common.median([r["wall_s"] for r in of_seed]))
            steps.append(common.median([r["env_steps"] for r in of_seed]))
            per_seed[seed] = common.mean([r["eval_mean"] for r in of_seed])
            returns.append(per_seed[seed])
        wall = common.mean(walls)
        env_steps = round(common.mean(steps))
        rows.append(
            {
                "env_id": env_id,
                "impl": impl,
                "seeds": seeds,
                "repeats": max(r["repeat"] for r in mine) + 1,
                "env_steps": env_steps,
                "wall_s": wall,
                "wall_s_per_seed": walls,
                "steps_per_s": env_steps / wall if wall > 0 else math.nan,
                "eval_mean": common.mean(returns),
                "eval_mean_per_seed": per_seed,
            }
        )
    for row in rows:
        ours = next(
            (r for r in rows if r["env_id"] == row["env_id"] and r["impl"] == IMPL_OURS), None
        )
        row["speedup"] = (
            row["wall_s"] / ours["wall_s"]
            if ours is not None and row["impl"] != IMPL_OURS and ours["wall_s"] > 0
            else None
        )
    return rows


def print_table(rows: list[dict[str, Any]]) -> None:
    headers = [
        "env",
        "impl",
        "steps",
        "wall time (s)",
        "env steps/s",
        "final mean return (eval, mean over seeds)",
        "speedup (sb3 wall / ours wall)",
    ]
    table = [
        [
            r["env_id"],
            r["impl"],
            r["env_steps"],
            r["wall_s"],
            round(r["steps_per_s"]),
            r["eval_mean"],
            "-" if r["speedup"] is None else f"{r['speedup']:.2f}x",
        ]
        for r in rows
    ]
    print(common.markdown_table(headers, table, digits=[0, 0, 0, 2, 0, 1, 0]), flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--envs", default=DEFAULT_ENVS, help=f"comma-separated env ids ({DEFAULT_ENVS})"
    )
    parser.add_argument(
        "--steps",
        type=int,
        default=None,
        help="env steps per training, for every env (default 100000 for each env)",
    )
    parser.add_argument(
        "--seeds",
        default="1",
        help="N = seeds 0..N-1, or a comma-separated list such as 0,3,7 (1, i.e. seed 0)",
    )
    parser.add_argument("--threads", type=int, default=1, help="torch threads for both (1)")
    parser.add_argument(
        "--repeats",
        type=int,
        default=1,
        help="trainings per (impl, seed); wall time is the median over repeats (1)",
    )
    parser.add_argument("--episodes", type=int, default=10, help="evaluation episodes (10)")
    parser.add_argument(
        "--sb3-zoo-sde",
        action="store_true",
        help="also train sb3 with rl-zoo's gSDE settings where the zoo uses them (Pendulum-v1)",
    )
    parser.add_argument(
        "--output",
        default=str(common.RESULTS_DIR / "compare_sb3.json"),
        help="JSON results file (benchmarks/results/compare_sb3.json)",
    )
    args = parser.parse_args(argv)
    if args.repeats < 1 or args.threads < 1 or args.episodes < 1:
        parser.error("--repeats, --threads and --episodes must be at least 1")
    try:
        args.seed_list = common.parse_seeds(args.seeds)
    except ValueError as exc:
        parser.error(f"--seeds: {exc}")

    common.check_presets(parser, common.parse_list(args.envs), args.steps)
    common.set_thread_env(args.threads)  # inherited by the spawned trainings
    jobs = build_jobs(args)
    runs: list[dict[str, Any]] = []
    for index, job in enumerate(jobs, 1):
        label = f"{job['env_id']} {job['impl']} seed {job['seed']} repeat {job['repeat']}"
        common.log(f"[{index}/{len(jobs)}] {label}: training {job['steps']:,} steps")
        result = common.run_in_fresh_process(TRAINERS[job["impl"]], job)
        runs.append({**job, **result})
        common.log(
            f"[{index}/{len(jobs)}] {label}: {result['wall_s']:.1f} s, "
            f"{result['env_steps'] / result['wall_s']:,.0f} steps/s, "
            f"eval {result['eval_mean']:.1f}"
        )
    rows = summarise(runs)
    print_table(rows)
    path = common.write_results(
        "compare_sb3",
        {"args": vars(args), "summary": rows, "runs": runs},
        path=args.output,
    )
    common.log(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
