"""What a sweep is: a `SweepSpec` (a base config, the swept knobs and their values, the seeds,
optionally a random-search budget), validated on construction, and the `Trial`s it makes (one
configuration, one seed each; a grid's product or a seeded random sample)."""

from __future__ import annotations

import itertools
import json
import math
import random
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


class SweepError(RuntimeError):
    """A sweep that cannot be found, read or launched (already running, Ray missing, ...)."""


@dataclass(frozen=True)
class KnobRange:
    """A numeric range for random search: uniform in [low, high] (log-uniform if log)."""

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
    hash of every knob but the seed: the same configuration always gets the same id."""

    trial_id: str
    config: TRPOConfig
    knobs: dict[str, Any]  # the swept knobs' values, JSON-safe

    @property
    def seed(self) -> int:
        return self.config.seed

    @property
    def config_id(self) -> str:
        return self.trial_id.rsplit("-s", 1)[0]

    def label(self) -> str:
        """'delta=0.01 alpha=0.5 seed=0' for terminals and run names."""
        parts = [f"{k}={show_value(v)}" for k, v in self.knobs.items()]
        return " ".join([*parts, f"seed={self.seed}"])


@dataclass(frozen=True)
class SweepSpec:
    """What to sweep. `grid` maps knob -> list of values (or a KnobRange, random search only);
    every knob of TRPOConfig but `seed` can be swept (seeds are `seeds`). With `samples`, that
    many configurations are drawn (seeded by `sample_seed`) instead of the full product. The
    spec is validated on construction: ConfigError lists every problem."""

    base: TRPOConfig = field(default_factory=TRPOConfig)
    grid: dict[str, GridValues] = field(default_factory=dict)
    seeds: list[int] = field(default_factory=lambda: [0])
    samples: int | None = None
    sample_seed: int = 0
    name: str = ""
    _trials: list[Trial] = field(default_factory=list, init=False, repr=False, compare=False)

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
        samples = self.samples
        if samples is not None and (not is_int(samples) or not 1 <= samples <= MAX_TRIALS):
            problems.append(
                f"samples must be a whole number from 1 to {MAX_TRIALS}, got {samples!r}"
            )
        if not is_int(self.sample_seed) or self.sample_seed < 0:
            problems.append(f"sample_seed must be a whole number >= 0, got {self.sample_seed!r}")
        for knob, values in grid.items():
            if isinstance(values, KnobRange) and samples is None:
                problems.append(
                    f"{knob} is a range ({values}); ranges need random search (set samples)"
                )
        if not problems:
            problems.extend(_check_values(self.base, grid))
        if not problems:
            if samples is None:
                size = math.prod(len(v) for v in grid.values()) * len(seeds)  # type: ignore[arg-type]
            else:
                size = samples * len(seeds)
            if size > MAX_TRIALS:
                problems.append(
                    f"the sweep has {size:,} trials (configurations x seeds); the limit is "
                    f"{MAX_TRIALS:,}: use fewer values or seeds, or random search (samples)"
                )
        if problems:
            raise ConfigError(problems)
        trials, combo_problems = _build_trials(self)
        if combo_problems:
            raise ConfigError(combo_problems)
        object.__setattr__(self, "_trials", trials)

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
            "samples": self.samples,
            "sample_seed": self.sample_seed,
            "name": self.name,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SweepSpec:
        """Build from a mapping (as written by to_dict); unknown keys are refused."""
        if not isinstance(data, dict):
            raise ConfigError([f"a sweep spec must be a JSON object, got {type(data).__name__}"])
        known = {"base", "grid", "seeds", "samples", "sample_seed", "name"}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError([f"unknown sweep spec key(s): {', '.join(unknown)}"])
        base = TRPOConfig.from_dict(data.get("base", {}))
        values = {
            k: data[k] for k in ("grid", "seeds", "samples", "sample_seed", "name") if k in data
        }
        return cls(base=base, **values)

    @classmethod
    def from_json(cls, text: str) -> SweepSpec:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError([f"sweep spec is not valid JSON: {exc}"]) from exc
        return cls.from_dict(data)

    @property
    def knob_names(self) -> list[str]:
        return list(self.grid)


def trials(spec: SweepSpec) -> list[Trial]:
    """Every trial of the spec, in a fixed order (seed by seed, then configuration by
    configuration); the same spec always gives the same trials."""
    return list(spec._trials)


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


def _draw(rng: random.Random, knob: str, r: KnobRange) -> Any:
    if is_int(KNOBS[knob]):
        low, high = int(r.low), int(r.high)
        if r.log:
            return round(math.exp(rng.uniform(math.log(low), math.log(high))))
        return rng.randint(low, high)
    if r.log:
        value = math.exp(rng.uniform(math.log(r.low), math.log(r.high)))
    else:
        value = rng.uniform(r.low, r.high)
    return float(f"{value:.4g}")  # readable values (the caller clips them into the range)


def _configurations(spec: SweepSpec) -> list[dict[str, Any]]:
    names = list(spec.grid)
    if spec.samples is None:
        lists = [spec.grid[n] for n in names]
        return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*lists)]
    rng = random.Random(spec.sample_seed)
    if all(isinstance(spec.grid[n], list) for n in names):
        lists = [spec.grid[n] for n in names]
        sizes = [len(v) for v in lists]
        total = math.prod(sizes)
        picks = rng.sample(range(total), min(spec.samples, total))
        out = []
        for index in picks:
            combo: dict[str, Any] = {}
            for name, values, size in zip(
                reversed(names), reversed(lists), reversed(sizes), strict=True
            ):
                index, digit = divmod(index, size)
                combo[name] = values[digit]  # type: ignore[index]
            out.append({n: combo[n] for n in names})
        return out
    out, seen = [], set()
    for _ in range(50 * spec.samples):
        if len(out) == spec.samples:
            break
        combo = {}
        for name in names:
            values = spec.grid[name]
            if isinstance(values, KnobRange):
                drawn = _draw(rng, name, values)
                combo[name] = min(max(drawn, type(drawn)(values.low)), type(drawn)(values.high))
            else:
                combo[name] = values[rng.randrange(len(values))]
        key = json.dumps({k: _json_value(v) for k, v in combo.items()}, sort_keys=True)
        if key not in seen:
            seen.add(key)
            out.append(combo)
    return out


def _build_trials(spec: SweepSpec) -> tuple[list[Trial], list[str]]:
    problems: list[str] = []
    configs: list[tuple[dict[str, Any], TRPOConfig]] = []
    for combo in _configurations(spec):
        try:
            configs.append((combo, spec.base.replace(**combo)))
        except ConfigError as exc:
            label = " ".join(f"{k}={show_value(v)}" for k, v in combo.items())
            problems.extend(f"{label}: {p}" for p in exc.problems)
            if len(problems) >= 10:
                problems.append("(more combinations fail the same way)")
                break
    if problems:
        return [], problems
    out = []
    for seed in spec.seeds:
        for combo, config in configs:
            seeded = config.replace(seed=seed)
            knobs = {k: _json_value(v) for k, v in combo.items()}
            out.append(Trial(f"{config_id(config)}-s{seed}", seeded, knobs))
    return out, []
