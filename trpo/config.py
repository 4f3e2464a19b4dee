"""The one typed configuration of a TRPO run, its validation and the per-environment presets.

Every knob is a field of `TRPOConfig` with a one-line meaning and typical range in its metadata
(`help`). `validate()` is the single place where values are checked; the CLI, the dashboard and
saved runs all build a `TRPOConfig` and so share the same messages.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field, fields
from typing import Any

MAX_BACKTRACKS_CAP = 50
MAX_CG_ITERS = 200
MAX_STEPS_PER_ITERATION = 1_000_000
MAX_ENVS = 256
ACTIVATIONS = ("tanh", "relu", "elu")
VECTORIZATIONS = ("sync", "async")


class ConfigError(ValueError):
    """A configuration that cannot run; `problems` lists every reason, one sentence each."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(self.problems))


def _knob(default: Any, help: str, **kwargs: Any) -> Any:
    if isinstance(default, (list, tuple)):
        return field(default_factory=lambda: tuple(default), metadata={"help": help, **kwargs})
    return field(default=default, metadata={"help": help, **kwargs})


@dataclass(frozen=True)
class TRPOConfig:
    """Every knob of a TRPO run. Defaults follow sb3-contrib / rl-baselines3-zoo."""

    env_id: str = _knob("CartPole-v1", "Gymnasium environment id from the registry.")
    total_steps: int = _knob(
        100_000,
        "Environment steps to train for, over all envs (1e5 classic, 1e6 MuJoCo). Training runs "
        "whole iterations, so the budget is rounded up: 2,500 with 1,024 per iteration trains "
        "3,072 (a normalised run adds one warm-up batch, counted in the budget).",
    )
    steps_per_iteration: int = _knob(
        2048,
        "Transitions collected per TRPO iteration, over all envs (1024-8192); "
        "a multiple of n_envs.",
    )
    n_envs: int = _knob(2, "Parallel environments in the vector env (1-16).")
    vectorization: str = _knob(
        "sync", "How the envs run: 'sync' (one process, fastest on few cores) or 'async'."
    )
    delta: float = _knob(
        0.01,
        "KL limit: max mean KL(pi_old || pi_new) of one step (0.001-0.05 per action "
        "dimension; the MuJoCo presets use up to 0.24 for 6 dims); larger = bigger steps.",
    )
    alpha: float = _knob(
        0.8,
        "Backtracking coefficient: each rejected candidate step shrinks by alpha (0.5-0.9).",
    )
    max_backtracks: int = _knob(
        10,
        "K: candidates j = 0..K are tried (step alpha^j of the full step) before giving up (5-20).",
    )
    gamma: float = _knob(0.99, "Discount factor (0.9-0.999).")
    gae_lambda: float = _knob(
        0.95, "GAE lambda (0.9-1); 1 gives the plain advantage A_t = G_t - V(s_t)."
    )
    normalize_advantages: bool = _knob(
        True, "Standardise advantages in each batch (mean 0, std 1) before the policy step."
    )
    cg_iters: int = _knob(15, "Conjugate-gradient iterations for x = H^-1 g (10-25).")
    cg_damping: float = _knob(
        0.1, "Damping added to the Fisher matrix: H + damping*I (1e-3 to 0.1)."
    )
    cg_residual_tol: float = _knob(
        1e-10,
        "Conjugate gradient stops early once its recurrence residual |r_k| (equal to "
        "|g - (H + damping I) x_k| in exact arithmetic) is below this.",
    )
    vf_lr: float = _knob(1e-3, "Adam learning rate of the value network (1e-4 to 3e-3).")
    vf_epochs: int = _knob(10, "Passes over the batch when fitting V_phi per iteration (5-20).")
    vf_minibatch: int = _knob(128, "Minibatch size of the value regression (64-512).")
    hidden_sizes: tuple[int, ...] = _knob(
        (64, 64), "Hidden layer widths of both the policy and the value network, e.g. 64,64."
    )
    activation: str = _knob("tanh", "Hidden activation: tanh, relu or elu.")
    log_std_init: float = _knob(
        0.0, "Initial log standard deviation of Gaussian policies (-2 to 1)."
    )
    normalize_observations: bool = _knob(
        False, "Standardise observations with running statistics (saved with the policy)."
    )
    normalize_rewards: bool = _knob(
        False, "Scale rewards by the running std of the discounted return (like VecNormalize)."
    )
    seed: int = _knob(0, "Seed of networks, action sampling, minibatches and environments.")
    torch_threads: int = _knob(1, "torch threads for this trainer (1 is as fast as 2 for 64x64).")
    probe_geometry: bool = _knob(
        False,
        "Record the true KL and surrogate along the step direction (a few extra forward passes).",
    )
    probe_points: int = _knob(13, "Points of the geometry probe, from 0 to 1.5x the full step.")
    checkpoint_every: int = _knob(
        1, "Write a checkpoint every this many iterations (and always at the end)."
    )

    def __post_init__(self) -> None:
        # Lists from JSON become tuples so the config stays hashable and comparable.
        if isinstance(self.hidden_sizes, list):
            object.__setattr__(self, "hidden_sizes", tuple(self.hidden_sizes))
        validate(self)

    # --- serialisation -------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["hidden_sizes"] = list(self.hidden_sizes)
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TRPOConfig:
        """Build from a mapping; unknown keys are refused (a typo must not be ignored)."""
        if not isinstance(data, dict):
            raise ConfigError([f"a config must be a JSON object, got {type(data).__name__}"])
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError([f"unknown config key(s): {', '.join(unknown)}"])
        return cls(**data)

    @classmethod
    def from_json(cls, text: str) -> TRPOConfig:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError([f"config is not valid JSON: {exc}"]) from exc
        return cls.from_dict(data)

    def replace(self, **changes: Any) -> TRPOConfig:
        return dataclasses.replace(self, **changes)

    @property
    def steps_per_env(self) -> int:
        return self.steps_per_iteration // self.n_envs

    @property
    def warmup_steps(self) -> int:
        """Steps of the normalisation warm-up batch played before iteration 1 (0 if none)."""
        normalised = self.normalize_observations or self.normalize_rewards
        return self.steps_per_iteration if normalised else 0

    @property
    def planned_iterations(self) -> int:
        """Iterations a new run trains: whole iterations until total_steps is reached."""
        return -(-(self.total_steps - self.warmup_steps) // self.steps_per_iteration)

    @property
    def planned_steps(self) -> int:
        """Env steps a new run will have taken at the end (total_steps rounded up)."""
        return self.warmup_steps + self.planned_iterations * self.steps_per_iteration


def knob_help() -> dict[str, str]:
    """Field name -> one-line help, for the CLI and the dashboard."""
    return {f.name: f.metadata.get("help", "") for f in fields(TRPOConfig)}


# --- validation --------------------------------------------------------------------------


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _finite(value: Any) -> bool:
    return _is_number(value) and math.isfinite(value)


def _check_int(problems: list[str], name: str, value: Any, low: int, high: int) -> None:
    if not _is_int(value):
        problems.append(f"{name} must be a whole number, got {value!r}")
    elif not low <= value <= high:
        problems.append(f"{name} must be between {low:,} and {high:,}, got {value:,}")


def _check_open(problems: list[str], name: str, value: Any, low: float, high: float) -> None:
    """value in the open interval (low, high), finite."""
    if not _finite(value):
        problems.append(f"{name} must be a finite number, got {value!r}")
    elif not low < value < high:
        problems.append(f"{name} must be strictly between {low} and {high}, got {value}")


def validate(config: TRPOConfig) -> None:
    """Check every knob; raise ConfigError listing all problems in words a person understands."""
    p: list[str] = []
    c = config
    if not isinstance(c.env_id, str) or not c.env_id.strip():
        p.append("env_id must be a non-empty Gymnasium id such as 'CartPole-v1'")
    elif ":" in c.env_id:
        p.append(
            f"env_id {c.env_id!r} names a module ('module:Name'); only ids already in "
            "Gymnasium's registry are accepted"
        )
    _check_int(p, "n_envs", c.n_envs, 1, MAX_ENVS)
    _check_int(p, "steps_per_iteration", c.steps_per_iteration, 2, MAX_STEPS_PER_ITERATION)
    if _is_int(c.n_envs) and _is_int(c.steps_per_iteration) and c.n_envs >= 1:
        if c.steps_per_iteration < 2 * c.n_envs:
            p.append(
                f"steps_per_iteration ({c.steps_per_iteration}) is too small for {c.n_envs} envs: "
                f"it needs at least 2 steps per env ({2 * c.n_envs})"
            )
        elif c.steps_per_iteration % c.n_envs:
            p.append(
                f"steps_per_iteration ({c.steps_per_iteration}) must be a multiple of "
                f"n_envs ({c.n_envs})"
            )
    _check_int(p, "total_steps", c.total_steps, 1, 10**10)
    if (
        _is_int(c.total_steps)
        and _is_int(c.steps_per_iteration)
        and c.total_steps < c.steps_per_iteration
    ):
        p.append(
            f"total_steps ({c.total_steps:,}) is less than one iteration "
            f"(steps_per_iteration = {c.steps_per_iteration:,})"
        )
    elif (
        _is_int(c.total_steps)
        and _is_int(c.steps_per_iteration)
        and (c.normalize_observations is True or c.normalize_rewards is True)
        and c.total_steps <= c.steps_per_iteration
    ):
        p.append(
            f"total_steps ({c.total_steps:,}) leaves no iteration after the normalisation "
            f"warm-up, which plays one batch of {c.steps_per_iteration:,} steps first; "
            f"use at least {2 * c.steps_per_iteration:,}"
        )
    if c.vectorization not in VECTORIZATIONS:
        p.append(
            f"vectorization must be one of {', '.join(VECTORIZATIONS)}, got {c.vectorization!r}"
        )
    if not _finite(c.delta):
        p.append(f"delta (the KL limit) must be a finite number > 0, got {c.delta!r}")
    elif not 0 < c.delta <= 1:
        p.append(f"delta (the KL limit) must be > 0 and at most 1, got {c.delta}")
    _check_open(p, "alpha (the backtracking coefficient)", c.alpha, 0.0, 1.0)
    _check_int(p, "max_backtracks (K)", c.max_backtracks, 1, MAX_BACKTRACKS_CAP)
    if not _finite(c.gamma) or not 0 < c.gamma <= 1:
        p.append(f"gamma must be in (0, 1], got {c.gamma!r}")
    if not _finite(c.gae_lambda) or not 0 <= c.gae_lambda <= 1:
        p.append(f"gae_lambda must be in [0, 1], got {c.gae_lambda!r}")
    _check_int(p, "cg_iters", c.cg_iters, 1, MAX_CG_ITERS)
    if not _finite(c.cg_damping) or not 0 <= c.cg_damping <= 10:
        p.append(f"cg_damping must be a finite number in [0, 10], got {c.cg_damping!r}")
    if not _finite(c.cg_residual_tol) or c.cg_residual_tol < 0:
        p.append(f"cg_residual_tol must be a finite number >= 0, got {c.cg_residual_tol!r}")
    if not _finite(c.vf_lr) or not 0 < c.vf_lr <= 1:
        p.append(f"vf_lr must be in (0, 1], got {c.vf_lr!r}")
    _check_int(p, "vf_epochs", c.vf_epochs, 0, 1000)
    _check_int(p, "vf_minibatch", c.vf_minibatch, 1, MAX_STEPS_PER_ITERATION)
    if not isinstance(c.hidden_sizes, tuple) or not c.hidden_sizes:
        p.append("hidden_sizes must be a non-empty list of layer widths, e.g. 64,64")
    elif not all(_is_int(h) and 1 <= h <= 4096 for h in c.hidden_sizes):
        p.append(f"hidden_sizes must be whole numbers between 1 and 4096, got {c.hidden_sizes}")
    elif len(c.hidden_sizes) > 8:
        p.append(f"hidden_sizes allows at most 8 layers, got {len(c.hidden_sizes)}")
    if c.activation not in ACTIVATIONS:
        p.append(f"activation must be one of {', '.join(ACTIVATIONS)}, got {c.activation!r}")
    if not _finite(c.log_std_init) or not -5 <= c.log_std_init <= 2:
        p.append(f"log_std_init must be a number in [-5, 2], got {c.log_std_init!r}")
    for name in (
        "normalize_observations",
        "normalize_rewards",
        "normalize_advantages",
        "probe_geometry",
    ):
        if not isinstance(getattr(c, name), bool):
            p.append(f"{name} must be true or false, got {getattr(c, name)!r}")
    _check_int(p, "seed", c.seed, 0, 2**32 - 1)
    _check_int(p, "torch_threads", c.torch_threads, 1, 64)
    _check_int(p, "checkpoint_every", c.checkpoint_every, 1, 10**6)
    _check_int(p, "probe_points", c.probe_points, 3, 101)
    if p:
        raise ConfigError(p)


# --- presets -----------------------------------------------------------------------------
# rl-baselines3-zoo's hyperparams/trpo.yml (rl-zoo3 2.9), mapped to our knobs:
#   n_steps (per env) * n_envs -> steps_per_iteration, batch_size -> vf_minibatch,
#   n_critic_updates -> vf_epochs, learning_rate -> vf_lr, cg_max_steps -> cg_iters,
#   target_kl -> delta, normalize -> normalize_observations + normalize_rewards,
#   n_timesteps -> total_steps; what an entry leaves out is sb3-contrib TRPO's default.
# The MuJoCo -v5 presets use the zoo's -v4 entries (the zoo has no -v5 TRPO entry).
# Not mapped: use_sde (gSDE, Pendulum and MountainCarContinuous); our Gaussian policy has a
# state-independent log std. tests/test_config.py checks every zoo preset against the
# installed rl-zoo3.
#
# Box action spaces: sb3-contrib's TRPO (2.9) averages its Gaussian KL over the batch *and the
# action dimensions* (`kl_divergence(...).mean()` on a [batch, act_dim] tensor), so its
# target_kl limits the KL per action dimension and its Hessian is H / act_dim. Solving
# (H / d + lambda I) x = g and stepping to KL / d = target_kl is exactly our step with
# delta = d * target_kl and cg_damping = d * lambda (measured on one HalfCheetah batch: the
# same update to 1e-6). The Box presets are translated that way (`_per_dimension_kl`), so that
# delta here is the true mean KL(pi_old || pi_new) and the step is the zoo's tuned step.
# Without it HalfCheetah-v5 took steps 6x smaller in KL and learned 0.43x as well at 100k.

#: Action dimensions of the Box-action preset envs (tests check them against Gymnasium).
ACTION_DIMS: dict[str, int] = {
    "Pendulum-v1": 1,
    "MountainCarContinuous-v0": 1,
    "LunarLanderContinuous-v3": 2,
    "BipedalWalker-v3": 4,
    "BipedalWalkerHardcore-v3": 4,
    "Ant-v5": 8,
    "HalfCheetah-v5": 6,
    "Hopper-v5": 3,
    "Walker2d-v5": 6,
    "Humanoid-v5": 17,
    "Swimmer-v5": 2,
    "InvertedPendulum-v5": 1,
    "InvertedDoublePendulum-v5": 1,
    "Reacher-v5": 2,
    "Pusher-v5": 7,
}
SB3_TARGET_KL = 0.01  # sb3-contrib TRPO's defaults, used where a zoo entry states none
SB3_CG_DAMPING = 0.1


def _per_dimension_kl(env_id: str, settings: dict[str, Any]) -> dict[str, Any]:
    """Translate a zoo entry's per-dimension target_kl and cg_damping to the true mean KL."""
    d = ACTION_DIMS.get(env_id, 1)
    return {
        **settings,
        "delta": round(d * settings.get("delta", SB3_TARGET_KL), 12),
        "cg_damping": round(d * settings.get("cg_damping", SB3_CG_DAMPING), 12),
    }


# the zoo's `pybullet-defaults` / `mujoco-defaults` anchor
_MUJOCO_ZOO: dict[str, Any] = dict(
    n_envs=2,
    total_steps=1_000_000,
    steps_per_iteration=2048,
    vf_minibatch=128,
    gamma=0.99,
    gae_lambda=0.95,
    cg_iters=25,
    cg_damping=0.1,
    vf_epochs=20,
    vf_lr=1e-3,
    normalize_observations=True,
    normalize_rewards=True,
)
_NORMALIZE = dict(normalize_observations=True, normalize_rewards=True)
_ZOO: dict[str, dict[str, Any]] = {
    # classic control
    "CartPole-v1": dict(
        n_envs=2,
        total_steps=100_000,
        steps_per_iteration=1024,
        vf_minibatch=512,
        cg_damping=1e-3,
        gae_lambda=0.98,
        gamma=0.99,
        vf_lr=1e-3,
        vf_epochs=20,
    ),
    "Pendulum-v1": dict(
        n_envs=2, total_steps=100_000, steps_per_iteration=2048, gamma=0.9, vf_epochs=15
    ),
    "Acrobot-v1": dict(n_envs=2, total_steps=100_000, steps_per_iteration=2048, **_NORMALIZE),
    "MountainCar-v0": dict(
        n_envs=2, total_steps=100_000, steps_per_iteration=2048, vf_epochs=20, **_NORMALIZE
    ),
    "MountainCarContinuous-v0": dict(
        n_envs=2, total_steps=50_000, steps_per_iteration=4096, **_NORMALIZE
    ),
    # Box2D
    "LunarLander-v3": dict(
        n_envs=2,
        total_steps=200_000,
        steps_per_iteration=1024,
        cg_damping=0.01,
        gae_lambda=0.98,
        gamma=0.99,
        vf_lr=1e-3,
        vf_epochs=15,
    ),
    "LunarLanderContinuous-v3": dict(
        n_envs=2, total_steps=100_000, steps_per_iteration=2048, vf_epochs=20, **_NORMALIZE
    ),
    "BipedalWalker-v3": dict(_MUJOCO_ZOO),
    "BipedalWalkerHardcore-v3": {**_MUJOCO_ZOO, "total_steps": 10_000_000},
    # MuJoCo: the zoo's shared MuJoCo settings, with each entry's own changes
    "Ant-v5": dict(_MUJOCO_ZOO),
    "HalfCheetah-v5": {**_MUJOCO_ZOO, "delta": 0.04},
    "Hopper-v5": dict(_MUJOCO_ZOO),
    "Walker2d-v5": dict(_MUJOCO_ZOO),
    "Humanoid-v5": {**_MUJOCO_ZOO, "total_steps": 2_000_000},
    "Swimmer-v5": {**_MUJOCO_ZOO, "gamma": 0.9999},
    # No zoo entry: the zoo's MuJoCo defaults above, documented as such (not tuned here).
    "InvertedPendulum-v5": dict(_MUJOCO_ZOO),
    "InvertedDoublePendulum-v5": dict(_MUJOCO_ZOO),
    "Reacher-v5": dict(_MUJOCO_ZOO),
    "Pusher-v5": dict(_MUJOCO_ZOO),
}
#: Every preset: the zoo's values, with Box envs' KL limit and damping made per-policy.
PRESETS: dict[str, dict[str, Any]] = {
    env_id: _per_dimension_kl(env_id, settings) for env_id, settings in _ZOO.items()
}
#: Presets with no rl-zoo entry, and where their values come from.
PRESET_SOURCES: dict[str, str] = {
    env: "rl-zoo's MuJoCo defaults (no zoo entry for this env)"
    for env in ("InvertedPendulum-v5", "InvertedDoublePendulum-v5", "Reacher-v5", "Pusher-v5")
}


def preset(preset_env: str, /, **overrides: Any) -> TRPOConfig:
    """The zoo-matched config for preset_env, with overrides (env_id included) on top."""
    if preset_env not in PRESETS:
        raise ConfigError(
            [f"no preset for {preset_env!r}; presets exist for: {', '.join(sorted(PRESETS))}"]
        )
    return TRPOConfig(**{"env_id": preset_env, **PRESETS[preset_env], **overrides})
