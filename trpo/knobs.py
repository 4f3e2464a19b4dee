"""What a config knob is, written once: type, bounds, typical range, unit, label, help, parser.

Every field of `TRPOConfig` carries one `Knob` in its metadata (`knob_of(name)`). From it come
config validation (`Knob.problems`), every CLI option (`Knob.parse` as the argparse type), the
dashboard's widgets (label, bounds, step, format) and the Sweeps inputs: no bound is written
twice. Cross-knob rules (steps_per_iteration a multiple of n_envs, ...) stay in
`trpo.config.validate`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

KINDS = ("int", "float", "bool", "choice", "text", "sizes")
TRUE_WORDS = {"true", "yes", "on", "1"}
FALSE_WORDS = {"false", "no", "off", "0"}


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_finite(value: Any) -> bool:
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    return number and math.isfinite(value)


def _num(value: float) -> str:
    """A bound as people write it: 1,000,000 for big whole numbers, else %g."""
    if float(value).is_integer() and abs(value) >= 10_000:
        return f"{int(value):,}"
    return f"{value:g}"


@dataclass(frozen=True)
class Knob:
    """One knob's schema.

    kind: int, float, bool, choice (one of `choices`), text, or sizes (a tuple of ints, each in
    [low, high], at most max_len of them). low/high bound the value (None: unbounded), open
    when low_open/high_open. typical: the range people use (shown in help and widgets).
    name: how messages name the knob, e.g. "delta (the KL limit)"; label: the widget's label
    with the paper's symbol; group: where the dashboard shows it (trust region, run, advanced).
    step/format: the widget's increment and printf format."""

    help: str
    kind: str
    label: str
    name: str = ""
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    typical: tuple[float, float] | None = None
    unit: str = ""
    choices: tuple[str, ...] = ()
    max_len: int | None = None
    group: str = "advanced"
    step: float | None = None
    format: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown knob kind {self.kind!r}")

    # --- bounds in words -------------------------------------------------------------------
    def bounds_text(self) -> str:
        """The allowed values in words: '> 0 and at most 1', 'between 1 and 50', 'one of ...'."""
        if self.kind == "choice":
            return "one of " + ", ".join(self.choices)
        low, high = self.low, self.high
        if low is not None and high is not None:
            if self.low_open and self.high_open:
                return f"strictly between {_num(low)} and {_num(high)}"
            if self.low_open:
                return f"> {_num(low)} and at most {_num(high)}"
            if self.high_open:
                return f"at least {_num(low)} and below {_num(high)}"
            return f"between {_num(low)} and {_num(high)}"
        if low is not None:
            return f"{'>' if self.low_open else '>='} {_num(low)}"
        if high is not None:
            return f"{'<' if self.high_open else '<='} {_num(high)}"
        return "any value"

    def in_bounds(self, value: float) -> bool:
        low, high = self.low, self.high
        if low is not None and (value <= low if self.low_open else value < low):
            return False
        return not (high is not None and (value >= high if self.high_open else value > high))

    # --- checking and parsing --------------------------------------------------------------
    def problems(self, value: Any) -> list[str]:
        """What is wrong with value for this knob, one sentence each ([] if nothing)."""
        name = self.name
        if self.kind == "bool":
            return (
                [] if isinstance(value, bool) else [f"{name} must be true or false, got {value!r}"]
            )
        if self.kind == "choice":
            ok = value in self.choices
            return [] if ok else [f"{name} must be {self.bounds_text()}, got {value!r}"]
        if self.kind == "text":
            ok = isinstance(value, str) and value.strip()
            return [] if ok else [f"{name} must be a non-empty text, got {value!r}"]
        if self.kind == "sizes":
            return self._size_problems(value)
        if self.kind == "int" and not is_int(value):
            return [f"{name} must be a whole number, got {value!r}"]
        if self.kind == "float" and not is_finite(value):
            return [f"{name} must be a finite number, got {value!r}"]
        if not self.in_bounds(value):
            shown = f"{value:,}" if is_int(value) else f"{value:g}"
            return [f"{name} must be {self.bounds_text()}, got {shown}"]
        return []

    def _size_problems(self, value: Any) -> list[str]:
        name = self.name
        if not isinstance(value, tuple) or not value:
            return [f"{name} must be a non-empty list of layer widths, e.g. 64,64"]
        if not all(is_int(v) and self.in_bounds(v) for v in value):
            return [f"{name} must be whole numbers {self.bounds_text()}, got {value}"]
        if self.max_len is not None and len(value) > self.max_len:
            return [f"{name} allows at most {self.max_len} layers, got {len(value)}"]
        return []

    def parse(self, text: str) -> Any:
        """The value a person typed, in the knob's type; ValueError with a message if it is not
        one (bounds are `problems`' job). '1.5' for an int knob is refused, never rounded."""
        raw = str(text).strip()
        if self.kind == "int":
            digits = raw.replace(",", "").replace("_", "")
            try:
                return int(digits)
            except ValueError:
                pass
            try:  # 1e6 and 2.0 are whole numbers too; 1.5 is not, and is never rounded
                number = float(digits)
            except ValueError:
                number = math.nan
            if math.isfinite(number) and number.is_integer():
                return int(number)
            raise ValueError(f"{self.name} must be a whole number, got {raw!r}")
        if self.kind == "float":
            try:
                value = float(raw)
            except ValueError:
                raise ValueError(f"{self.name} must be a number, got {raw!r}") from None
            if not math.isfinite(value):
                raise ValueError(f"{self.name} must be a finite number, got {raw!r}")
            return value
        if self.kind == "bool":
            if raw.lower() in TRUE_WORDS:
                return True
            if raw.lower() in FALSE_WORDS:
                return False
            raise ValueError(f"{self.name} must be true or false, got {raw!r}")
        if self.kind == "sizes":
            try:
                return tuple(int(part) for part in raw.split(",") if part.strip())
            except ValueError:
                raise ValueError(
                    f"{self.name} must be comma-separated layer widths such as 64,64, got {raw!r}"
                ) from None
        return raw

    def describe(self) -> str:
        """Help with the allowed and typical values and the unit, for --help and tooltips."""
        parts = [self.help]
        if self.kind in ("int", "float") and (self.low is not None or self.high is not None):
            parts.append(f"Allowed: {self.bounds_text()}.")
        if self.typical is not None:
            parts.append(f"Typical: {_num(self.typical[0])} to {_num(self.typical[1])}.")
        if self.unit:
            parts.append(f"Unit: {self.unit}.")
        return " ".join(parts)
