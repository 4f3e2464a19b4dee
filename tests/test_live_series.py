"""The live charts' data (trpo.live_series, trpo.live_layout) against plain-Python recomputation.

A simulated browser applies every update the way pages/live/charts.js does (keep the first
`keep` points of each trace, append the rest; a full replaces): after any sequence of appends
it must hold exactly the series computed from scratch.
"""

from __future__ import annotations

import json
import math
import random

import numpy as np
import pandas as pd
import pytest

from trpo import live_layout, live_series
from trpo.live_series import CHARTS, bucket_indices, bucket_size, first_indices, plan
from trpo.metrics_log import records_to_frame

K = 10
REJECTED_Y = live_layout.rejected_y(K)


def naive_bucket_size(n: int, max_points: int) -> int:
    b = 1
    while math.ceil(n / b) > max_points // 3:
        b *= 2
    return b


def naive_indices(values: list[float], b: int, keep=("min", "max", "last")) -> list[int]:
    picked: set[int] = set()
    for start in range(0, len(values), b):
        valid = [i for i in range(start, min(start + b, len(values))) if math.isfinite(values[i])]
        if not valid:
            continue
        if "min" in keep:
            low = min(values[i] for i in valid)
            picked.add(next(i for i in valid if values[i] == low))
        if "max" in keep:
            high = max(values[i] for i in valid)
            picked.add(next(i for i in valid if values[i] == high))
        if "last" in keep:
            picked.add(valid[-1])
    return sorted(picked)


def records(n: int, seed: int = 0, start: int = 1) -> list[dict]:
    """n records as the run store holds them: some rejected steps, some batches without a
    finished episode, a few spikes."""
    rng = random.Random(seed)
    rows = []
    for it in range(start, start + n):
        accepted = rng.random() > 0.15
        episode = rng.random() > 0.1
        mean = rng.gauss(100, 20) + (5000 if rng.random() < 0.002 else 0)
        rows.append(
            {
                "iteration": it,
                "env_steps": it * 512,
                "return_mean": mean if episode else None,
                "return_min": mean - rng.random() * 50 if episode else None,
                "return_max": mean + rng.random() * 50 if episode else None,
                "step_accepted": accepted,
                "backtrack_index": rng.randrange(K + 1) if accepted else None,
                "kl": rng.random() * 0.01 if accepted else None,
                "cg_residuals": [10.0**-k for k in range(rng.randrange(1, 9))],
            }
        )
    return rows


def browser_apply(held: dict | None, update: live_series.Update) -> dict:
    """What charts.js does with an update, on plain lists."""
    if update.kind == "full":
        return {c: [dict(t) for t in traces] for c, traces in update.charts.items()}
    assert held is not None
    out = {}
    for chart, traces in update.charts.items():
        out[chart] = []
        for old, new in zip(held[chart], traces, strict=True):
            keep = new["keep"]
            out[chart].append({k: old[k][:keep] + new[k] for k in old})
    return out


def from_scratch(
    frame: pd.DataFrame, axis: str = "env steps", max_points: int = live_series.MAX_POINTS
) -> dict:
    update, _ = plan(frame, None, "run", axis, REJECTED_Y, max_points)
    assert update is not None and update.kind == "full"
    return update.charts


# --- downsampling ----------------------------------------------------------------------------


def test_bucket_size_is_the_smallest_power_of_two_that_fits() -> None:
    for max_points in (3, 30, 600):
        for n in [*range(0, 700), 1999, 2000, 2001, 10**6]:
            assert bucket_size(n, max_points) == naive_bucket_size(n, max_points)


@pytest.mark.parametrize("b", [1, 2, 4, 7, 16])
def test_bucket_indices_match_a_loop_over_the_buckets(b: int) -> None:
    rng = random.Random(b)
    for n in (0, 1, 5, 16, 33, 100):
        values = [
            rng.choice([math.nan, float(rng.randrange(5)), rng.gauss(0, 1)]) for _ in range(n)
        ]
        for keep in (("min", "max", "last"), ("min", "last"), ("max",)):
            got = bucket_indices(np.array(values, dtype=float), b, keep).tolist()
            assert got == naive_indices(values, b, keep), (n, keep)


def test_first_indices_give_the_first_and_the_count_per_bucket() -> None:
    rng = random.Random(3)
    mask = [rng.random() < 0.2 for _ in range(103)]
    first, counts = first_indices(np.array(mask), 8)
    expected = [
        (next(i for i in range(s, min(s + 8, 103)) if mask[i]), sum(mask[s : s + 8]))
        for s in range(0, 103, 8)
        if any(mask[s : s + 8])
    ]
    assert list(zip(first.tolist(), counts.tolist(), strict=True)) == expected


# --- the series of a long run -------------------------------------------------------------


def test_two_thousand_records_keep_every_extreme_the_last_point_and_every_reject() -> None:
    rows = records(2000, seed=7)
    frame = records_to_frame(rows)
    charts = from_scratch(frame)
    steps = {r["env_steps"]: r for r in rows}

    def drawn(chart: str, i: int) -> list[tuple[float, float]]:
        t = charts[chart][i]
        return list(zip(t["x"], t["y"], strict=True))

    for chart, i, name, ends in [
        ("returns", 2, "return_mean", (min, max)),
        ("returns", 1, "return_min", (min,)),
        ("returns", 0, "return_max", (max,)),
        ("kl", 0, "kl", (min, max)),
        ("backtrack", 0, "backtrack_index", (min, max)),
    ]:
        points = drawn(chart, i)
        assert 0 < len(points) <= live_series.MAX_POINTS
        # every drawn point is a record's value at that record's x
        assert all(steps[x][name] == y for x, y in points)
        values = [(r["env_steps"], r[name]) for r in rows if r[name] is not None]
        ys = {y for _, y in points}
        for end in ends:
            assert end(v for _, v in values) in ys, (chart, name, end)
        assert points[-1] == values[-1]  # the latest value is drawn, last
    # one marker per bucket holding rejected steps; their counts add up to every reject
    b = bucket_size(2000)
    rejected = [i for i, r in enumerate(rows) if not r["step_accepted"]]
    buckets = sorted({i // b for i in rejected})
    for chart in ("kl", "backtrack"):
        marks = charts[chart][1]
        assert [int(x) // 512 - 1 for x in marks["x"]] == [
            next(i for i in rejected if i // b == k) for k in buckets
        ]
        assert marks["y"] == [REJECTED_Y[chart]] * len(buckets)
        counts = [
            1 if t == "rejected: θ kept" else int(t.split("×")[1].split()[0]) for t in marks["text"]
        ]
        assert sum(counts) == len(rejected)
        assert all(t.startswith("rejected: θ kept") for t in marks["text"])
    # rejected steps are not drawn as KL or j values
    assert all(steps[x]["step_accepted"] for x in charts["kl"][0]["x"])
    assert all(steps[x]["step_accepted"] for x in charts["backtrack"][0]["x"])


def test_a_short_run_is_drawn_whole_on_either_x_axis() -> None:
    rows = records(40, seed=1)
    frame = records_to_frame(rows)
    for axis, column in live_series.X_AXES.items():
        charts = from_scratch(frame, axis)
        kept = [r for r in rows if r["step_accepted"]]
        assert charts["kl"][0]["x"] == [float(r[column]) for r in kept]
        assert charts["kl"][0]["y"] == [r["kl"] for r in kept]
        assert charts["kl"][1]["x"] == [float(r[column]) for r in rows if not r["step_accepted"]]


def test_cg_curves_are_the_last_fifteen_with_residuals() -> None:
    rows = records(30, seed=2)
    rows[-1]["cg_residuals"] = []  # |g| below the tolerance: no CG iteration
    frame = records_to_frame(rows)
    curves = live_series.cg_curves(frame)
    expected = [r for r in rows if r["cg_residuals"]][-15:]
    assert [c["iteration"] for c in curves] == [r["iteration"] for r in expected]
    assert [c["y"] for c in curves] == [r["cg_residuals"] for r in expected]


# --- updates: only what is new ----------------------------------------------------------------


@pytest.mark.parametrize("chunks", [[1] * 200, [3, 50, 1, 1, 200, 7, 1, 400, 1]])
def test_appends_send_deltas_that_rebuild_the_series_from_scratch(chunks: list[int]) -> None:
    rows = records(sum(chunks), seed=5)
    held, sent, n, kinds = None, None, 0, []
    for size in chunks:
        n += size
        frame = records_to_frame(rows[:n])
        update, sent = plan(frame, sent, "run", "env steps", REJECTED_Y, max_points=60)
        assert update is not None
        kinds.append(update.kind)
        held = browser_apply(held, update)
        assert held == from_scratch(frame, max_points=60), n
        if update.kind == "delta":  # only the points of the last buckets are sent
            b = bucket_size(n, 60)
            cut = (update.base // b) * b
            for chart in CHARTS:
                for t in update.charts[chart]:
                    assert all(x > cut * 512 for x in t["x"])
        again, same = plan(frame, sent, "run", "env steps", REJECTED_Y, max_points=60)
        assert again is None and same == sent  # no new record: nothing to send
    assert kinds.count("delta") > kinds.count("full")
    # fulls: the first send, the first finished episode and the first reject (a chart that
    # was empty), and each time the bucket size doubled
    assert kinds.count("full") <= 3 + math.log2(bucket_size(n, 60)) + 1


def test_what_forces_a_full_update() -> None:
    rows = records(50, seed=9)
    frame = records_to_frame(rows)
    first, sent = plan(frame, None, "run", "env steps", REJECTED_Y)
    assert first is not None and first.kind == "full" and first.epoch == 1
    grown = records_to_frame([*rows, *records(1, seed=1, start=51)])
    delta, _ = plan(grown, sent, "run", "env steps", REJECTED_Y)
    assert delta is not None and delta.kind == "delta" and delta.base == 50 and delta.n == 51
    cases = {
        "another x axis": plan(grown, sent, "run", "iteration", REJECTED_Y),
        "another run": plan(grown, sent, "other", "env steps", REJECTED_Y),
        "asked for": plan(grown, sent, "run", "env steps", REJECTED_Y, force_full=True),
        "a shorter log": plan(records_to_frame(rows[:40]), sent, "run", "env steps", REJECTED_Y),
        "a sent record changed": plan(
            records_to_frame([{**rows[0], "kl": 0.5}, *rows[1:]]),
            sent,
            "run",
            "env steps",
            REJECTED_Y,
        ),
    }
    for why, (update, held) in cases.items():
        assert update is not None and update.kind == "full", why
        assert held.epoch == 2, why


def test_a_new_cg_curve_alone_replaces_the_cg_chart() -> None:
    rows = records(20, seed=4)
    _, sent = plan(records_to_frame(rows), None, "run", "env steps", REJECTED_Y)
    update, _ = plan(
        records_to_frame(rows + records(1, 4, 21)), sent, "run", "env steps", REJECTED_Y
    )
    assert update is not None and update.kind == "delta"
    assert [c["iteration"] for c in update.cg] == list(range(7, 22))


def test_an_empty_log_then_the_first_record() -> None:
    empty = records_to_frame([])
    update, sent = plan(empty, None, "run", "env steps", REJECTED_Y)
    assert update is not None and update.kind == "full" and update.n == 0
    assert all(t["x"] == [] for traces in update.charts.values() for t in traces)
    payload = live_layout.payload(update, "run", "env steps", 0.01, K)
    assert all(c["layout"]["annotations"] for c in payload["charts"].values())  # "waiting..."
    update, _ = plan(records_to_frame(records(1)), sent, "run", "env steps", REJECTED_Y)
    assert update is not None and update.kind == "full"  # the empty charts lose their note


# --- layout: one notation, units, the rejects' marks ----------------------------------------


def strings(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in strings(v)]
    return []


def test_payload_layouts_use_one_notation_and_give_units() -> None:
    frame = records_to_frame(records(30, seed=3))
    update, _ = plan(frame, None, "run", "iteration", REJECTED_Y)
    payload = live_layout.payload(update, "run", "iteration", 0.02, K)
    json.dumps(payload, allow_nan=False)  # plain JSON
    texts = " ".join(s for c in payload["charts"].values() for s in strings(c["layout"]))
    texts += " ".join(s for c in payload["charts"].values() for t in c["data"] for s in strings(t))
    for ascii_name in ("delta", "theta", "alpha", "pi_old", "pi_new"):
        assert ascii_name not in texts.lower().replace("δ", ""), ascii_name
    for symbol in ("δ = 0.02", "π_old", "α^j", "θ kept", "nats"):
        assert symbol in texts, symbol
    for chart in payload["charts"].values():
        layout = chart["layout"]
        assert layout["xaxis"]["title"]["text"] and layout["yaxis"]["title"]["text"]
        assert layout["uirevision"] == "run|iteration"
    kl = payload["charts"]["kl"]
    assert kl["layout"]["shapes"][0]["y0"] == 0.02  # the δ line
    marks = kl["data"][1]
    assert marks["yaxis"] == "y2" and set(marks["y"]) == {live_layout.KL_MARK_Y}
    low, high = kl["layout"]["yaxis2"]["range"]
    assert low < live_layout.KL_MARK_Y <= high  # at the top, not at KL = 0
    assert "%{text}" in marks["hovertemplate"]
