"""Numbers as the dashboard writes them: one home for the formatting every page shares."""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Any


def finite(value: Any) -> bool:
    """A real, finite number (not None, NaN, inf or a non-number)."""
    return isinstance(value, numbers.Real) and math.isfinite(value)


def fmt(value: Any, spec: str = ".4g") -> str:
    """value formatted with spec; 'n/a' for None, NaN, inf or a non-number."""
    return format(value, spec) if finite(value) else "n/a"


def tex(value: Any) -> str:
    """A number for LaTeX: 1.2e-05 becomes 1.2 \\times 10^{-5}."""
    text = fmt(value)
    if "e" in text:
        mantissa, exponent = text.split("e")
        return rf"{mantissa} \times 10^{{{int(exponent)}}}"
    return text


def plural(n: int, word: str) -> str:
    """'1 seed', '3 seeds' (English plurals with -s)."""
    return f"{n:,} {word}{'' if n == 1 else 's'}"


def eta_text(seconds: float) -> str:
    """A duration rounded up to the second: '42 s', '3 min 05 s', '2 h 07 min'."""
    seconds = math.ceil(seconds)
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def markdown_table(
    headers: Sequence[str], rows: Sequence[Sequence[str]], right: Sequence[bool] | None = None
) -> str:
    """A GitHub markdown table of already formatted cells, padded to line up; columns flagged
    in `right` are right-aligned (numbers). A '|' in a cell is escaped."""
    cells = [[str(c).replace("|", "\\|") for c in row] for row in rows]
    right = [False] * len(headers) if right is None else list(right)
    widths = [max([len(h), *(len(row[i]) for row in cells)]) for i, h in enumerate(headers)]

    def line(items: Sequence[str]) -> str:
        padded = [
            item.rjust(w) if r else item.ljust(w)
            for item, w, r in zip(items, widths, right, strict=True)
        ]
        return "| " + " | ".join(padded) + " |"

    rule = (
        "|"
        + "|".join(
            "-" * (w + 1) + ":" if r else "-" * (w + 2) for w, r in zip(widths, right, strict=True)
        )
        + "|"
    )
    return "\n".join([line(headers), rule, *(line(row) for row in cells)])
