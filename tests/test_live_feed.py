"""The live charts' route logic (trpo.live_feed): what a browser holding a token gets, checked
against computations from `load_metrics` (a full parse, not the incremental reader), and which
run ids and parameters are refused.

A simulated browser applies every answer the way pages/live/charts.js does (a full replaces, a
delta keeps the first `keep` points of each trace and appends, "same" draws nothing, an answer
that does not fit what it holds makes it ask for everything): after appends, a rewritten log
and another x axis it must hold what a fresh computation from the log gives.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import pytest

from tests.live_helpers import K, synthetic_record, synthetic_run
from trpo import live_layout, live_series
from trpo.live_feed import LiveFeed, parse_token, run_folder, token
from trpo.metrics_tail import TailCache
from trpo.store import Run, load_metrics


class Browser:
    """What charts.js holds: per chart its traces' x, y (and text), the epoch and record count
    of the last answer drawn, and the token to send."""

    def __init__(self, feed: LiveFeed, run_id: str, axis: str = "env steps") -> None:
        self.feed, self.run_id, self.axis = feed, run_id, axis
        self.charts: dict[str, list[dict[str, list]]] | None = None
        self.held: tuple[int, int] | None = None
        self.have: str | None = None
        self.kinds: list[str] = []

    def ask(self) -> dict[str, Any]:
        answer = self.feed.answer(self.run_id, self.axis, self.have)
        assert answer.status == 200, answer.body
        body = json.loads(answer.json())  # what goes over the wire
        self.kinds.append(body["kind"])
        if body["kind"] in ("same", "delta"):
            base = body["n"] if body["kind"] == "same" else body["base"]
            if self.held != (body["epoch"], base):  # does not fit: everything again
                self.held = self.have = None
                return self.ask()
        self.have = body["have"]
        if body["kind"] == "full":
            self.charts = {
                chart: [{k: list(t.get(k) or []) for k in ("x", "y", "text")} for t in c["data"]]
                for chart, c in body["charts"].items()
                if chart != "cg"
            }
        elif body["kind"] == "delta":
            assert self.charts is not None
            for chart, traces in body["charts"].items():
                for old, new in zip(self.charts[chart], traces, strict=True):
                    for k in ("x", "y", "text"):
                        if k in new:
                            old[k] = old[k][: new["keep"]] + new[k]
        self.held = (body["epoch"], body["n"])
        return body


def from_log(run: Run, axis: str = "env steps") -> dict[str, list[dict[str, list]]]:
    """The series a fresh page would draw, computed from the whole log (load_metrics)."""
    update, _ = live_series.plan(
        load_metrics(run.path), None, run.id, axis, live_layout.rejected_y(K)
    )
    assert update is not None
    return {
        chart: [{k: list(t.get(k) or []) for k in ("x", "y", "text")} for t in traces]
        for chart, traces in update.charts.items()
    }


@pytest.fixture
def feed(tmp_path: Path) -> LiveFeed:
    return LiveFeed(tmp_path, TailCache(max_runs=4))


def test_the_first_answer_is_the_whole_run_as_computed_from_the_log(
    feed: LiveFeed, tmp_path: Path
) -> None:
    run = synthetic_run(tmp_path, 40, "full", seed=3)
    body = json.loads(feed.answer(run.id).json())
    assert body["kind"] == "full" and body["n"] == 40 and body["running"] is True
    assert set(body["charts"]) == {"returns", "kl", "backtrack", "cg"}
    rows = load_metrics(run.path).to_dict("records")
    accepted = [r for r in rows if r["step_accepted"]]
    kl, marks = body["charts"]["kl"]["data"]
    # 40 records: no downsampling, so every accepted step is drawn, and every reject marked
    assert kl["x"] == [float(r["env_steps"]) for r in accepted]
    assert kl["y"] == [r["kl"] for r in accepted]
    assert marks["x"] == [float(r["env_steps"]) for r in rows if not r["step_accepted"]]
    mean = body["charts"]["returns"]["data"][2]
    episodes = [r for r in rows if not math.isnan(r["return_mean"])]  # batches without: gaps
    assert len(episodes) < 40 and mean["x"] == [float(r["env_steps"]) for r in episodes]
    assert mean["y"] == [r["return_mean"] for r in episodes]
    cg = body["charts"]["cg"]["data"]
    assert cg[-1]["y"] == rows[-1]["cg_residuals"] and len(cg) == live_series.CG_HISTORY
    layout = body["charts"]["kl"]["layout"]
    assert layout["uirevision"] == f"{run.id}|env steps"
    assert layout["shapes"][0]["y0"] == run.config().delta  # the run's own δ
    run.set_status("finished")


def test_then_same_while_nothing_is_new_then_only_the_new_points(
    feed: LiveFeed, tmp_path: Path
) -> None:
    run = synthetic_run(tmp_path, 30, "deltas")
    browser = Browser(feed, run.id)
    first = browser.ask()
    same = browser.ask()
    expected = {"kind": "same", "epoch": first["epoch"], "n": 30, "have": first["have"]}
    assert same == {**expected, "running": True}
    run.append(synthetic_record(31))
    delta = browser.ask()
    assert delta["kind"] == "delta" and (delta["base"], delta["n"]) == (30, 31)
    mean = delta["charts"]["returns"][2]  # one new point, nothing older
    assert mean["keep"] == len(first["charts"]["returns"]["data"][2]["x"])
    assert mean["x"] == [31 * 512]
    assert mean["y"] == [synthetic_record(31).return_mean]
    assert "cg" in delta  # a new iteration's residuals replace the small CG chart
    assert browser.charts == from_log(run)
    assert browser.ask()["kind"] == "same"
    run.set_status("finished")


def test_a_browser_following_the_feed_holds_what_the_log_gives(
    feed: LiveFeed, tmp_path: Path
) -> None:
    run = synthetic_run(tmp_path, 90, "follow", seed=4)
    browser = Browser(feed, run.id)
    n = 90
    for chunk in [1, 1, 3, 0, 7, 1, 20, 2, 1, 300, 1]:  # 300: the bucket size doubles
        for _ in range(chunk):
            n += 1
            run.append(synthetic_record(n, seed=4))
        browser.ask()
        assert browser.charts == from_log(run), n
    assert browser.kinds.count("delta") >= 6 and "same" in browser.kinds
    # a resumed run rewrote its log (shorter): everything again, with a new epoch
    run.truncate_metrics(50)
    epoch = browser.held[0]
    assert browser.ask()["kind"] == "full" and browser.held == (epoch + 1, 50)
    assert browser.charts == from_log(run)
    # the other x axis: the old token fits nothing, so a full
    browser.axis = "iteration"
    assert browser.ask()["kind"] == "full" and browser.charts == from_log(run, "iteration")
    run.set_status("finished")
    assert browser.ask()["running"] is False


def test_a_token_is_what_the_browser_holds(tmp_path: Path) -> None:
    run = synthetic_run(tmp_path, 10, "token")
    frame = load_metrics(run.path)
    _, sent = live_series.plan(frame, None, run.id, "iteration", live_layout.rejected_y(K))
    assert parse_token(token(sent), run.id, "iteration") == sent
    elsewhere = parse_token(token(sent), "another-run", "iteration")
    assert (elsewhere.run_id, elsewhere.axis) == ("", "")  # valid, but fits nothing
    run.set_status("finished")


def test_the_log_is_read_incrementally_once_for_every_browser(tmp_path: Path) -> None:
    tails = TailCache(max_runs=2)
    feed = LiveFeed(tmp_path, tails)
    run = synthetic_run(tmp_path, 20, "shared")
    browsers = [Browser(feed, run.id) for _ in range(3)]
    for b in browsers:
        b.ask()
    tail = tails.get(run.path)
    assert len(tails) == 1 and tails.get(str(run.path) + "/") is tail
    version = tail.snapshot()[1]
    for b in browsers:
        b.ask()
    assert tail.snapshot()[1] == version  # nothing new: nothing parsed again
    run.append(synthetic_record(21))
    for b in browsers:
        assert b.ask()["kind"] == "delta"
    assert tail.snapshot()[1] == version + 1  # the new record, parsed once
    # bounded: the least recently used tail goes
    others = [synthetic_run(tmp_path, 1, f"other {i}") for i in range(2)]
    for other in others:
        feed.answer(other.id)
    assert len(tails) == 2 and tails.get(run.path) is not tail
    for r in [run, *others]:
        r.set_status("finished")


def test_unknown_and_malicious_run_ids_are_refused(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    run = synthetic_run(runs, 3, "good")
    outside = synthetic_run(tmp_path / "elsewhere", 3, "outside")
    (runs / "no-config").mkdir()
    (runs / "no-config" / "metrics.jsonl").write_text("")
    (runs / "a-file").write_text("{}")
    os.symlink(outside.path, runs / "linked")
    feed = LiveFeed(runs, TailCache())
    assert feed.answer(run.id).status == 200
    relative = os.path.relpath(outside.path, runs)
    for bad in [
        "",
        ".",
        "..",
        "../elsewhere",
        relative,
        str(outside.path),
        f"{run.id}/../{run.id}",
        f"{run.id}/",
        f"..\\{run.id}",
        f"{run.id}\0",
        "no-config",
        "a-file",
        "linked",  # a symlink to a run outside the runs directory
        "x" * 300,
        "20991231-000000-CartPole-v1-000000",
    ]:
        answer = feed.answer(bad)
        assert answer.status == 404, bad
        assert set(answer.body) == {"error"} and "charts" not in answer.body
        assert run_folder(runs, bad) is None, bad
    assert run_folder(runs, run.id) == runs / run.id
    assert LiveFeed(tmp_path / "missing", TailCache()).answer(run.id).status == 404
    for r in (run, outside):
        r.set_status("finished")


def test_bad_parameters_are_refused(feed: LiveFeed, tmp_path: Path) -> None:
    run = synthetic_run(tmp_path, 3, "params")
    have = feed.answer(run.id).body["have"]
    assert feed.answer(run.id, "iteration", "").status == 200  # no token yet
    epoch, bucket, n, empty, cg, digest, fingerprint = have.split(".")
    for axis, bad in [
        ("wall time", None),
        ("", None),
        ("env steps", "garbage"),
        ("env steps", have + "x"),
        ("env steps", have.upper()),
        ("env steps", f"{epoch}.3.{n}.{empty}.{cg}.{digest}.{fingerprint}"),  # bucket 3
        ("env steps", f"{epoch}.0.{n}.{empty}.{cg}.{digest}.{fingerprint}"),
        ("env steps", f"-1.{bucket}.{n}.{empty}.{cg}.{digest}.{fingerprint}"),
        ("env steps", f"{epoch}.{bucket}.{'9' * 16}.{empty}.{cg}.{digest}.{fingerprint}"),
        ("env steps", f"{epoch}.{bucket}.{n}.01.{cg}.{digest}.{fingerprint}"),
        ("env steps", f"{epoch}.{bucket}.{n}.{empty}.{cg}.{digest[:-1]}.{fingerprint}"),
    ]:
        answer = feed.answer(run.id, axis, bad)
        assert answer.status == 400, (axis, bad)
        assert set(answer.body) == {"error"}
    # a well-formed token that claims more than the log holds: a full, not an error
    claims = f"{epoch}.{bucket}.999.{empty}.{cg}.{digest}.{fingerprint}"
    assert feed.answer(run.id, "env steps", claims).body["kind"] == "full"
    run.set_status("finished")


def test_a_run_whose_config_or_log_cannot_be_read(feed: LiveFeed, tmp_path: Path) -> None:
    run = synthetic_run(tmp_path, 3, "broken")
    (run.path / "config.json").write_text("{not json")
    answer = feed.answer(run.id)
    assert answer.status == 404 and "cannot be drawn" in answer.body["error"]
    other = synthetic_run(tmp_path, 3, "no log")
    (other.path / "metrics.jsonl").unlink()
    (other.path / "metrics.jsonl").mkdir()  # unreadable: the page says why, no point drawn
    body = feed.answer(other.id).body
    assert body["kind"] == "full" and body["n"] == 0
    for r in (run, other):
        r.set_status("finished")
