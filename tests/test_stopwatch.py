"""The stopwatch: named laps that add up, on an injected clock."""

import pytest

from trpo.stopwatch import Stopwatch


def ticking(*times: float):
    """A clock returning the given times in order."""
    values = iter(times)
    return lambda: next(values)


def test_laps_are_named_and_add_up():
    watch = Stopwatch(ticking(0.0, 1.5, 2.0, 2.25, 10.0, 11.0))
    with watch.lap("collect"):
        pass
    with watch.lap("cg"):
        pass
    with watch.lap("collect"):  # a second lap of the same name adds to the first
        pass
    assert watch.laps == {"collect": 2.5, "cg": 0.25}
    assert watch["collect"] == 2.5 and watch["cg"] == 0.25
    assert watch["probe"] == 0.0  # never run
    assert watch.total == 2.75


def test_a_lap_that_raises_is_still_timed():
    watch = Stopwatch(ticking(1.0, 4.0))
    with pytest.raises(RuntimeError), watch.lap("value"):
        raise RuntimeError("boom")
    assert watch["value"] == 3.0


def test_real_clock_is_monotonic_and_positive():
    watch = Stopwatch()
    with watch.lap("work"):
        sum(range(1000))
    assert watch["work"] > 0 and watch.total == watch["work"]
