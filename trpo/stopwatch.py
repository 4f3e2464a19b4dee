"""A stopwatch with named laps, so timing stays out of the code it times.

watch = Stopwatch()
with watch.lap("collect"):
    batch = collect()
watch["collect"]  # seconds spent in that block (0.0 for a lap never run)
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager


class Stopwatch:
    """Wall time per named lap; a name used twice adds up. clock: seconds, monotonic."""

    def __init__(self, clock: Callable[[], float] = time.perf_counter) -> None:
        self.clock = clock
        self.laps: dict[str, float] = {}

    @contextmanager
    def lap(self, name: str) -> Iterator[None]:
        """Time the with-block under name (also when it raises)."""
        start = self.clock()
        try:
            yield
        finally:
            self.laps[name] = self.laps.get(name, 0.0) + (self.clock() - start)

    def __getitem__(self, name: str) -> float:
        return self.laps.get(name, 0.0)

    @property
    def total(self) -> float:
        """Seconds in all laps together (laps are meant not to nest)."""
        return sum(self.laps.values())
