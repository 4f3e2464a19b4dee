"""The one typed configuration of a TRPO run, its validation and the per-environment presets.

Every knob is a field of `TRPOConfig` with a one-line meaning and typical range in its metadata
(`help`). `validate()` is the single place where values are checked; the CLI, the dashboard and
saved runs all build a `TRPOConfig` and so share the same messages.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field, fields
from typing import Any

from trpo.knobs import Knob

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


def _knob(default: Any, help: str, kind: str, label: str, **schema: Any) -> Any:
    """A TRPOConfig field whose metadata holds its `Knob` (trpo.knobs)."""
    knob = Knob(help=help, kind=kind, label=label, **schema)
    if isinstance(default, (list, tuple)):
        return field(default_factory=lambda: tuple(default), metadata={"knob": knob})
    return field(default=default, metadata={"knob": knob})


@dataclass(frozen=True)
class TRPOConfig:
    """Every knob of a TRPO run. Defaults follow sb3-contrib / rl-baselines3-zoo."""

    env_id: str = _knob(
        "CartPole-v1",
        "Gymnasium environment id from the registry.",
        "text",
        "Environment",
        group="run",
    )
    total_steps: int = _knob(
        100_000,
        "Environment steps to train for, over all envs. Training runs whole iterations, so the "
        "budget is rounded up: 2,500 with 1,024 per iteration trains 3,072 (a normalised run "
        "adds one warm-up batch, counted in the budget).",
        "int",
        "Total env steps",
        low=1,
        high=10**10,
        typical=(1e5, 1e6),
        unit="env steps",
        group="run",
        step=10_000,
    )
    steps_per_iteration: int = _knob(
        2048,
        "Transitions collected per TRPO iteration, over all envs; a multiple of n_envs.",
        "int",
        "Steps per iteration",
        low=2,
        high=MAX_STEPS_PER_ITERATION,
        typical=(1024, 8192),
        unit="transitions",
        step=256,
    )
    n_envs: int = _knob(
        2,
        "Parallel environments in the vector env.",
        "int",
        "Parallel envs (n_envs)",
        low=1,
        high=MAX_ENVS,
        typical=(1, 16),
        step=1,
    )
    vectorization: str = _knob(
        "sync",
        "How the envs run: 'sync' (one process, fastest on few cores) or 'async'.",
        "choice",
        "Vectorization",
        choices=VECTORIZATIONS,
    )
    delta: float = _knob(
        0.01,
        "KL limit δ: max mean KL(π_old || π_new) of one step; larger = bigger steps. The "
        "MuJoCo presets use 0.04 per action dimension (0.24 for HalfCheetah's 6).",
        "float",
        "δ: KL limit (delta)",
        name="delta (the KL limit)",
        low=0,
        high=1,
        low_open=True,
        typical=(0.001, 0.05),
        unit="nats",
        group="trust region",
        step=0.001,
        format="%.4f",
    )
    alpha: float = _knob(
        0.8,
        "Backtracking coefficient α: each rejected candidate step shrinks by α.",
        "float",
        "α: backtracking coefficient (alpha)",
        name="alpha (the backtracking coefficient)",
        low=0,
        high=1,
        low_open=True,
        high_open=True,
        typical=(0.5, 0.9),
        group="trust region",
        step=0.05,
        format="%.2f",
    )
    max_backtracks: int = _knob(
        10,
        "K: candidates j = 0..K are tried (step α^j of the full step) before giving up.",
        "int",
        "K: max backtracks",
        name="max_backtracks (K)",
        low=1,
        high=MAX_BACKTRACKS_CAP,
        typical=(5, 20),
        group="trust region",
        step=1,
    )
    gamma: float = _knob(
        0.99,
        "Discount factor γ.",
        "float",
        "γ: discount (gamma)",
        low=0,
        high=1,
        low_open=True,
        typical=(0.9, 0.999),
        step=0.001,
        format="%.4f",
    )
    gae_lambda: float = _knob(
        0.95,
        "GAE λ; 1 gives the plain advantage A_t = G_t - V(s_t).",
        "float",
        "λ: GAE lambda",
        low=0,
        high=1,
        typical=(0.9, 1),
        step=0.01,
        format="%.3f",
    )
    normalize_advantages: bool = _knob(
        True,
        "Standardise advantages in each batch (mean 0, std 1) before the policy step.",
        "bool",
        "Normalize advantages",
    )
    cg_iters: int = _knob(
        15,
        "Conjugate-gradient iterations for x = H⁻¹g.",
        "int",
        "CG iterations",
        low=1,
        high=MAX_CG_ITERS,
        typical=(10, 25),
        step=1,
    )
    cg_damping: float = _knob(
        0.1,
        "Damping added to the Fisher matrix: H + damping·I.",
        "float",
        "CG damping",
        low=0,
        high=10,
        typical=(1e-3, 0.1),
        step=0.001,
        format="%g",
    )
    cg_residual_tol: float = _knob(
        1e-10,
        "Conjugate gradient stops early once its recurrence residual |r_k| (equal to "
        "|g - (H + damping I) x_k| in exact arithmetic) is below this.",
        "float",
        "CG residual tolerance",
        low=0,
        step=1e-10,
        format="%.1e",
    )
    vf_lr: float = _knob(
        1e-3,
        "Adam learning rate of the value network.",
        "float",
        "Value learning rate",
        low=0,
        high=1,
        low_open=True,
        typical=(1e-4, 3e-3),
        step=1e-4,
        format="%g",
    )
    vf_epochs: int = _knob(
        10,
        "Passes over the batch when fitting V_φ per iteration.",
        "int",
        "Value epochs",
        low=0,
        high=1000,
        typical=(5, 20),
        step=1,
    )
    vf_minibatch: int = _knob(
        128,
        "Minibatch size of the value regression.",
        "int",
        "Value minibatch",
        low=1,
        high=MAX_STEPS_PER_ITERATION,
        typical=(64, 512),
        unit="transitions",
        step=32,
    )
    hidden_sizes: tuple[int, ...] = _knob(
        (64, 64),
        "Hidden layer widths of both the policy and the value network, e.g. 64,64.",
        "sizes",
        "Hidden sizes",
        low=1,
        high=4096,
        max_len=8,
    )
    activation: str = _knob(
        "tanh", "Hidden activation.", "choice", "Activation", choices=ACTIVATIONS
    )
    log_std_init: float = _knob(
        0.0,
        "Initial log standard deviation of Gaussian policies.",
        "float",
        "Initial log σ",
        low=-5,
        high=2,
        typical=(-2, 1),
        step=0.1,
        format="%.2f",
    )
    normalize_observations: bool = _knob(
        False,
        "Standardise observations with running statistics (saved with the policy).",
        "bool",
        "Normalize observations",
    )
    normalize_rewards: bool = _knob(
        False,
        "Scale rewards by the running std of the discounted return (like VecNormalize).",
        "bool",
        "Normalize rewards",
    )
    seed: int = _knob(
        0,
        "Seed of networks, action sampling, minibatches and environments.",
        "int",
        "Seed",
        low=0,
        high=2**32 - 1,
        group="run",
        step=1,
    )
    torch_threads: int = _knob(
        1,
        "torch threads for this trainer (1 is as fast as 2 for 64x64).",
        "int",
        "torch threads",
        low=1,
        high=64,
        group="run",
        step=1,
    )
    probe_geometry: bool = _knob(
        False,
        "Record the true KL and surrogate along the step direction (a few extra forward passes).",
        "bool",
        "Probe the step's geometry",
        group="run",
    )
    probe_points: int = _knob(
        13,
        "Points of the geometry probe, from 0 to 1.5x the full step.",
        "int",
        "Probe points",
        low=3,
        high=101,
        group="run",
        step=1,
    )
    checkpoint_every: int = _knob(
        1,
        "Write a checkpoint every this many iterations (and always at the end).",
        "int",
        "Checkpoint every (iterations)",
        low=1,
        high=10**6,
        unit="iterations",
        group="run",
        step=1,
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


def knob_schema() -> dict[str, Knob]:
    """Field name -> its Knob, with the field name as the message name where none is given."""
    schema = {}
    for f in fields(TRPOConfig):
        knob = f.metadata["knob"]
        schema[f.name] = knob if knob.name else dataclasses.replace(knob, name=f.name)
    return schema


def knob_help() -> dict[str, str]:
    """Field name -> help with allowed and typical values and the unit, for the CLI and the
    dashboard."""
    return {name: knob.describe() for name, knob in knob_schema().items()}


# --- validation --------------------------------------------------------------------------


def validate(config: TRPOConfig) -> None:
    """Check every knob against its schema, then the rules between knobs; raise ConfigError
    listing all problems in words a person understands."""
    c = config
    p: list[str] = []
    ok = {}
    for name, knob in knob_schema().items():
        found = knob.problems(getattr(c, name))
        ok[name] = not found
        p += found
    if ok["env_id"] and ":" in c.env_id:
        p.append(
            f"env_id {c.env_id!r} names a module ('module:Name'); only ids already in "
            "Gymnasium's registry are accepted"
        )
    if ok["n_envs"] and ok["steps_per_iteration"]:
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
    if ok["total_steps"] and ok["steps_per_iteration"]:
        normalised = c.normalize_observations is True or c.normalize_rewards is True
        if c.total_steps < c.steps_per_iteration:
            p.append(
                f"total_steps ({c.total_steps:,}) is less than one iteration "
                f"(steps_per_iteration = {c.steps_per_iteration:,})"
            )
        elif normalised and c.total_steps <= c.steps_per_iteration:
            p.append(
                f"total_steps ({c.total_steps:,}) leaves no iteration after the normalisation "
                f"warm-up, which plays one batch of {c.steps_per_iteration:,} steps first; "
                f"use at least {2 * c.steps_per_iteration:,}"
            )
    if p:
        raise ConfigError(p)
