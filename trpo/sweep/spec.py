"""What a sweep is: a `SweepSpec` (a base config, the swept knobs and their values, the seeds,
the search: grid, random or TPE through Optuna, the number of configurations, the pruner and the
study's storage), validated on construction.

The spec samples nothing: Optuna's samplers choose the configurations while the sweep runs
(trpo.sweep.search). What is known here is the grid itself (`grid_configurations`, for grid
search and for checking every combination before anything runs) and how one configuration with
one seed becomes a `Trial` (`make_trial`)."""

from __future__ import annotations

import itertools
import json
import math
import re
from collections.abc import Iterable
from dataclasses import MISSING, dataclass, field, fields
from difflib import get_close_matches
from typing import Any

from trpo.compare import config_id
from trpo.config import ConfigError, TRPOConfig

MAX_TRIALS = 10_000
KNOBS: dict[str, Any] = {
    f.name: (f.default if f.default is not MISSING else f.default_factory())  # type: ignore[misc]
    for f in fields(TRPOConfig)
}
SEARCHES = ("grid", "random", "tpe")
PRUNERS = ("none", "median", "hyperband")
# dialect[+driver]://... as SQLAlchemy (and so Optuna's RDB storage) takes it
_STORAGE_URL = re.compile(r"^[A-Za-z][A-Za-z0-9]*(\+[A-Za-z0-9_]+)?://")


class SweepError(RuntimeError):
    """A sweep that cannot be found, read or launched (already running, Ray missing, ...)."""


@dataclass(frozen=True)
class KnobRange:
    """A numeric range for random or TPE search: [low, high], on a log scale if log."""

    low: float
    high: float
    log: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"low": self.low, "high": self.high, "log": self.log}

    def __str__(self) -> str:
        return f"{self.low}:{self.high}" + (":log" if self.log else "")


GridValues = list[Any] | KnobRange


@dataclass(frozen=True)
class Trial:
    """One configuration with one seed. trial_id = '<config_id>-s<seed>' where config_id is a
    hash of every knob but the seed: the same configuration always gets the same id (a
    configuration that a sampler proposes again gets '<config_id>-s<seed>-r<k>'). number: the
    Optuna trial that chose it (None outside a running sweep)."""

    trial_id: str
    config: TRPOConfig
    knobs: dict[str, Any]  # the swept knobs' values, JSON-safe
    number: int | None = None

    @property
    def seed(self) -> int:
        return self.config.seed

    @property
    def config_id(self) -> str:
        return self.trial_id.split("-s", 1)[0]

    def label(self) -> str:
        """'delta=0.01 alpha=0.5 seed=0' for terminals and run names."""
        parts = [
            f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={show_value(v)}"
            for k, v in self.knobs.items()
        ]
        return " ".join([*parts, f"seed={self.seed}"])


@dataclass(frozen=True)
class SweepSpec:
    """What to sweep. `grid` maps knob -> list of values, or a KnobRange (random and TPE search
    only); every knob of TRPOConfig but `seed` can be swept (seeds are `seeds`: every
    configuration runs once per seed).

    search: 'grid' (every combination, Optuna's GridSampler), 'random' (RandomSampler) or 'tpe'
    (TPESampler); sample_seed seeds the sampler. trials: how many configurations to run (default:
    the whole grid; required with ranges). pruner: 'none', 'median' or 'hyperband' (Optuna's
    MedianPruner / HyperbandPruner, judging each run's return iteration by iteration);
    pruner_startup: runs finished before the median pruner prunes; pruner_warmup: iterations a
    run always gets (median: n_warmup_steps; hyperband: min_resource, 0 = Optuna's 'auto').
    storage: an Optuna storage URL (default None: sqlite:///<sweep folder>/study.db).
    Validated on construction: ConfigError lists every problem."""

    base: TRPOConfig = field(default_factory=TRPOConfig)
    grid: dict[str, GridValues] = field(default_factory=dict)
    seeds: list[int] = field(default_factory=lambda: [0])
    search: str = "grid"
    trials: int | None = None
    sample_seed: int = 0
    pruner: str = "none"
    pruner_startup: int = 5
    pruner_warmup: int = 0
    storage: str | None = None
    name: str = ""

    def __post_init__(self) -> None:
        problems: list[str] = []
        if not isinstance(self.base, TRPOConfig):
            raise ConfigError([f"base must be a TRPOConfig, got {type(self.base).__name__}"])
        grid = _normalise_grid(self.grid, problems)
        grid = {k: grid[k] for k in KNOBS if k in grid}  # one order, whatever the input's
        seeds = _normalise_seeds(self.seeds, problems)
        object.__setattr__(self, "grid", grid)
        object.__setattr__(self, "seeds", seeds)
        object.__setattr__(self, "name", str(self.name or "").strip()[:100])
        problems.extend(_check_search(self))
        ranges = [k for k, v in grid.items() if isinstance(v, KnobRange)]
        if self.search == "grid":
            problems.extend(
                f"{k} is a range ({grid[k]}); grid search takes lists of values: use random "
                "or tpe search for ranges"
                for k in ranges
            )
        elif ranges and self.trials is None and self.search in SEARCHES:
            problems.append(
                f"{self.search} search over a range ({', '.join(ranges)}) needs the number of "
                "configurations to try (trials)"
            )
        if not problems:
            problems.extend(_check_values(self.base, grid))
        if not problems:
            size = self.n_configs * len(seeds)
            if size > MAX_TRIALS:
                problems.append(
                    f"the sweep has {size:,} trials (configurations x seeds); the limit is "
                    f"{MAX_TRIALS:,}: use fewer values, seeds or trials"
                )
        if not problems and not ranges and (self.grid_size or 0) <= MAX_TRIALS:
            problems.extend(_check_combinations(self))  # every combination a sampler may pick
        if problems:
            raise ConfigError(problems)

    # --- sizes -------------------------------------------------------------------------------
    @property
    def grid_size(self) -> int | None:
        """Combinations of the listed values (None if a knob has a range)."""
        if any(isinstance(v, KnobRange) for v in self.grid.values()):
            return None
        return math.prod(len(v) for v in self.grid.values())  # type: ignore[arg-type]

    @property
    def n_configs(self) -> int:
        """Configurations the sweep runs: `trials` (no more than the grid's for grid search),
        or the whole grid (a spec with ranges always has `trials`)."""
        size = self.grid_size
        if self.trials is None:
            assert size is not None  # validated: ranges need trials
            return size
        return min(self.trials, size) if self.search == "grid" and size else self.trials

    @property
    def n_trials(self) -> int:
        """Runs the sweep makes: configurations x seeds."""
        return self.n_configs * len(self.seeds)

    @property
    def knob_names(self) -> list[str]:
        return list(self.grid)

    # --- serialisation -------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        grid = {
            k: v.to_dict() if isinstance(v, KnobRange) else [_json_value(x) for x in v]
            for k, v in self.grid.items()
        }
        return {
            "base": self.base.to_dict(),
            "grid": grid,
            "seeds": list(self.seeds),
            "search": self.search,
            "trials": self.trials,
            "sample_seed": self.sample_seed,
            "pruner": self.pruner,
            "pruner_startup": self.pruner_startup,
            "pruner_warmup": self.pruner_warmup,
            "storage": self.storage,
            "name": self.name,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SweepSpec:
        """Build from a mapping (as written by to_dict); unknown keys are refused. A spec
        written before searches were Optuna's (no 'search') is a grid search, or a random one
        if it has 'samples' (the number of configurations)."""
        if not isinstance(data, dict):
            raise ConfigError([f"a sweep spec must be a JSON object, got {type(data).__name__}"])
        keys = [f.name for f in fields(cls) if f.name != "base"]
        unknown = sorted(set(data) - {"base", "samples", *keys})
        if unknown:
            raise ConfigError([f"unknown sweep spec key(s): {', '.join(unknown)}"])
        base = TRPOConfig.from_dict(data.get("base", {}))
        values = {k: data[k] for k in keys if k in data}
        if data.get("samples") is not None and "search" not in data:  # an older sweep.json
            values.update(search="random", trials=data["samples"])
        return cls(base=base, **values)

    @classmethod
    def from_json(cls, text: str) -> SweepSpec:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError([f"sweep spec is not valid JSON: {exc}"]) from exc
        return cls.from_dict(data)


def trials(spec: SweepSpec) -> list[Trial]:
    """Every trial of a grid search over the whole grid, in a fixed order (seed by seed, then
    configuration by configuration). Random and TPE searches (and a grid search limited to
    fewer trials) have no such list: their configurations are chosen as the sweep runs."""
    if spec.search != "grid" or spec.n_configs != spec.grid_size:
        raise SweepError(
            f"a {spec.search} search over {spec.n_configs} configurations chooses its trials "
            "as it runs"
        )
    configs = grid_configurations(spec)
    return [make_trial(spec, combo, seed) for seed in spec.seeds for combo in configs]


def grid_configurations(spec: SweepSpec) -> list[dict[str, Any]]:
    """Every combination of the listed values (knob -> value), in the spec's knob order. Not
    for specs with ranges."""
    names = list(spec.grid)
    lists = [spec.grid[n] for n in names]
    return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*lists)]


def make_trial(
    spec: SweepSpec, combo: dict[str, Any], seed: int, repeat: int = 0, number: int | None = None
) -> Trial:
    """The trial of one configuration (knob -> value) with one seed; ConfigError if the
    combination is not a valid config. repeat > 0: the configuration's repeat-th run with
    this seed (a sampler proposed it again)."""
    config = spec.base.replace(**combo, seed=seed)
    knobs = {k: _json_value(v) for k, v in combo.items()}
    trial_id = f"{config_id(config)}-s{seed}" + (f"-r{repeat}" if repeat else "")
    return Trial(trial_id, config, knobs, number)


def is_int(value: Any) -> bool:
    """A whole number (an int, not a bool)."""
    return isinstance(value, int) and not isinstance(value, bool)


def _json_value(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def show_value(value: Any) -> str:
    """A knob value for people: sizes as '64,64'."""
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    return str(value)


def _check_search(spec: SweepSpec) -> list[str]:
    problems = []
    if spec.search not in SEARCHES:
        problems.append(f"search must be one of {', '.join(SEARCHES)}, got {spec.search!r}")
    if spec.pruner not in PRUNERS:
        problems.append(f"pruner must be one of {', '.join(PRUNERS)}, got {spec.pruner!r}")
    if spec.trials is not None and (not is_int(spec.trials) or not 1 <= spec.trials <= MAX_TRIALS):
        problems.append(
            f"trials must be a whole number from 1 to {MAX_TRIALS:,}, got {spec.trials!r}"
        )
    for name in ("sample_seed", "pruner_startup", "pruner_warmup"):
        value = getattr(spec, name)
        if not is_int(value) or value < 0:
            problems.append(f"{name} must be a whole number >= 0, got {value!r}")
    storage = spec.storage
    if storage is not None and (not isinstance(storage, str) or not _STORAGE_URL.match(storage)):
        problems.append(
            f"storage must be a database URL such as sqlite:///path/study.db or "
            f"postgresql://user@host/db, got {storage!r}"
        )
    return problems


def _normalise_grid(grid: Any, problems: list[str]) -> dict[str, GridValues]:
    if not isinstance(grid, dict):
        problems.append(f"grid must map knob names to lists of values, got {type(grid).__name__}")
        return {}
    out: dict[str, GridValues] = {}
    for knob, values in grid.items():
        if knob == "seed":
            problems.append("seed is not a knob to sweep: list the seeds in seeds")
            continue
        if knob not in KNOBS:
            close = get_close_matches(str(knob), list(KNOBS), n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            problems.append(f"unknown knob {knob!r}{hint}")
            continue
        if isinstance(values, dict) and set(values) <= {"low", "high", "log"}:
            values = KnobRange(values.get("low"), values.get("high"), bool(values.get("log")))
        if isinstance(values, KnobRange):
            out[knob] = values
            continue
        if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
            problems.append(f"{knob}: give a list of values, got {values!r}")
            continue
        items = list(values)
        if knob == "hidden_sizes":
            items = [tuple(v) if isinstance(v, (list, tuple)) else v for v in items]
        if not items:
            problems.append(f"{knob}: the list of values is empty")
            continue
        seen: list[Any] = []
        for item in items:
            if any(item == s and type(item) is type(s) for s in seen):
                problems.append(f"{knob}: the value {show_value(item)} is listed twice")
            seen.append(item)
        out[knob] = items
    return out


def _normalise_seeds(seeds: Any, problems: list[str]) -> list[int]:
    if isinstance(seeds, (str, bytes)) or not isinstance(seeds, Iterable):
        problems.append(f"seeds must be a list of whole numbers, got {seeds!r}")
        return []
    out = list(seeds)
    if not out:
        problems.append("seeds is empty: give at least one seed")
    bad = [s for s in out if not is_int(s) or not 0 <= s <= 2**32 - 1]
    if bad:
        problems.append(f"seeds must be whole numbers from 0 to 2**32-1, got {bad}")
    elif len(set(out)) != len(out):
        problems.append(f"seeds lists a seed twice: {out}")
    return out


def _check_values(base: TRPOConfig, grid: dict[str, GridValues]) -> list[str]:
    """Each value alone on the base config (ranges: both ends), so a bad value is named."""
    problems: list[str] = []
    for knob, values in grid.items():
        if isinstance(values, KnobRange):
            problems.extend(_check_range(base, knob, values))
            continue
        for value in values:
            try:
                base.replace(**{knob: value})
            except (ConfigError, TypeError) as exc:
                reasons = exc.problems if isinstance(exc, ConfigError) else [str(exc)]
                problems.extend(f"{knob}={show_value(value)}: {r}" for r in reasons)
    return problems


def _check_range(base: TRPOConfig, knob: str, r: KnobRange) -> list[str]:
    default = KNOBS[knob]
    if isinstance(default, bool) or not isinstance(default, (int, float)):
        return [f"{knob} is not numeric: give a list of values, not a range"]
    ends = (r.low, r.high)
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in ends):
        return [f"{knob}: a range needs two numbers, got {r.low!r} and {r.high!r}"]
    if not all(math.isfinite(v) for v in ends):
        return [f"{knob}: range ends must be finite, got {r}"]
    if is_int(default) and not all(float(v).is_integer() for v in ends):
        return [f"{knob} takes whole numbers: range {r} must have whole-number ends"]
    if not r.low < r.high:
        return [f"{knob}: range low must be below high, got {r}"]
    if r.log and r.low <= 0:
        return [f"{knob}: a log range needs low > 0, got {r}"]
    problems: list[str] = []
    for end in ends:
        value = int(end) if is_int(default) else float(end)
        try:
            base.replace(**{knob: value})
        except ConfigError as exc:
            problems.extend(f"{knob}={value} (range end): {p}" for p in exc.problems)
    return problems


def _check_combinations(spec: SweepSpec) -> list[str]:
    """Every combination of listed values on the base config (cross-knob rules), at most ten
    problems named."""
    problems: list[str] = []
    for combo in grid_configurations(spec):
        try:
            spec.base.replace(**combo)
        except ConfigError as exc:
            label = " ".join(f"{k}={show_value(v)}" for k, v in combo.items())
            problems.extend(f"{label}: {p}" for p in exc.problems)
            if len(problems) >= 10:
                problems.append("(more combinations fail the same way)")
                break
    return problems
