"""What a browser watching a run's live charts lacks, asked for over HTTP: the logic of the
dashboard's live-charts route (app.py wires it, pages/live/charts.js polls it).

Why a route: the charts used to be brought up to date by a Streamlit fragment rerunning every
0.5 s per tab, and each rerun re-rendered the page's React tree in every watching browser. A
plain GET costs the browser a fetch and, only when records are new, the plotly redraw.

The server keeps nothing per tab. Each answer carries a token, `have`, that says what the
browser then holds (a `live_series.Sent`: bucket size, record count, digest, ...); the browser
sends it back with its next request and gets the update `live_series.plan` computes from it
(a full, a delta with only the new points, or "same"). A token that does not fit the run any
more (another run or x axis, a rewritten log) simply yields a full. The log is read through the
process's `TailCache`, so a new record is parsed once however many tabs ask.

No web framework and no Streamlit here: `LiveFeed.answer` returns a status and a JSON body.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trpo import live_layout, live_series
from trpo.config import ConfigError
from trpo.live_series import CHARTS, X_AXES, Sent
from trpo.metrics_log import records_to_frame
from trpo.metrics_tail import TailCache, shared_tails
from trpo.store import Run, RunStoreError

DEFAULT_AXIS = "env steps"
MAX_ID_LENGTH = 255  # a folder name, at most
_NUMBER = r"(0|[1-9][0-9]{0,14})"  # a non-negative integer, at most 15 digits
_TOKEN = re.compile(
    rf"{_NUMBER}\.{_NUMBER}\.{_NUMBER}\.([01]{{{len(CHARTS)}}})\.(-|{_NUMBER})"
    r"\.([0-9a-f]{40})\.([0-9a-f]{8})"
)


@dataclass(frozen=True)
class Answer:
    """An HTTP status and its JSON body."""

    status: int
    body: dict[str, Any] = field(default_factory=dict)

    def json(self) -> bytes:
        """The body as compact JSON (NaN never occurs: the points are made JSON-safe)."""
        return json.dumps(self.body, separators=(",", ":"), allow_nan=False).encode()


class BadRequest(ValueError):
    """A parameter of the request that cannot be used, with the reason."""


def _fingerprint(run_id: str, axis: str) -> str:
    """8 hex digits naming the run and x axis a token was made for."""
    return hashlib.sha1(f"{run_id}\0{axis}".encode(), usedforsecurity=False).hexdigest()[:8]


def token(sent: Sent) -> str:
    """What the browser holds, as the short string it sends back (`have`)."""
    empty = "".join("1" if e else "0" for e in sent.empty)
    cg = "-" if sent.cg_iteration is None else str(sent.cg_iteration)
    fingerprint = _fingerprint(sent.run_id, sent.axis)
    return f"{sent.epoch}.{sent.bucket}.{sent.n}.{empty}.{cg}.{sent.digest}.{fingerprint}"


def parse_token(text: str, run_id: str, axis: str) -> Sent:
    """The Sent a token describes, for this run and x axis: BadRequest if it is not a token.

    A token made for another run or x axis (or by an older page) is valid but fits nothing:
    its Sent names no run, so `plan` answers with a full."""
    match = _TOKEN.fullmatch(text)
    if match is None:
        raise BadRequest("have is not a token this server made")
    epoch, bucket, n, empty, cg, _, digest, fingerprint = match.groups()
    if int(bucket) & (int(bucket) - 1) or int(bucket) == 0:
        raise BadRequest("have names a bucket size that is not a power of two")
    mine = fingerprint == _fingerprint(run_id, axis)
    return Sent(
        epoch=int(epoch),
        run_id=run_id if mine else "",
        axis=axis if mine else "",
        bucket=int(bucket),
        n=int(n),
        digest=digest,
        empty=tuple(c == "1" for c in empty),
        cg_iteration=None if cg == "-" else int(cg),
    )


def run_folder(root: str | os.PathLike[str], run_id: str) -> Path | None:
    """The run folder `run_id` names in the runs directory `root`, or None.

    Only a plain name of a direct child of root that holds config.json is a run id: no
    separator, no '..', no NUL, and nothing that resolves outside root (a symlinked folder
    included), so no request can read a file elsewhere."""
    if not isinstance(run_id, str) or not 0 < len(run_id) <= MAX_ID_LENGTH:
        return None
    if run_id in (".", "..") or any(c in run_id for c in "/\\\0"):
        return None
    base = Path(root)
    path = base / run_id
    try:
        inside = path.resolve().parent == base.resolve()
        found = inside and not path.is_symlink() and (path / "config.json").is_file()
    except (OSError, RuntimeError, ValueError):  # a symlink loop, a name the OS refuses
        return None
    return path if found else None


class LiveFeed:
    """The live-charts route of one runs directory: `answer(run_id, axis, have)`.

    Stateless per browser (the token says what it holds); the only state is the log readers,
    shared with the pages through `tails`. Safe to call from many threads at once."""

    def __init__(self, root: str | os.PathLike[str], tails: TailCache | None = None) -> None:
        self.root = Path(root)
        self.tails = tails if tails is not None else shared_tails()

    def answer(self, run_id: str, axis: str | None = None, have: str | None = None) -> Answer:
        """What a browser that holds `have` (None or '': nothing yet) needs for the charts of
        run `run_id` on x axis `axis` (default env steps).

        200: {"kind": "full"|"delta"|"same", "epoch", "n", ... (trpo.live_layout.payload),
        "have": the token to send next, "running": whether the run still trains}. 400 for a
        bad axis or token, 404 for an id that is not a drawable run (each with "error")."""
        axis = DEFAULT_AXIS if axis is None else axis
        if axis not in X_AXES:
            return Answer(400, {"error": f"axis must be one of {sorted(X_AXES)}"})
        path = run_folder(self.root, run_id)
        if path is None:
            return Answer(404, {"error": "no such run"})
        try:
            previous = parse_token(have, run_id, axis) if have else None
        except BadRequest as exc:
            return Answer(400, {"error": str(exc)})
        run = Run(path)
        try:
            config = run.config()
        except (ConfigError, RunStoreError) as exc:
            return Answer(404, {"error": f"the run cannot be drawn: {exc}"})
        # the status before the log: a run that says it has ended wrote its last record first
        running = run.state() == "running"
        try:
            frame = self.tails.get(path).frame()
        except RunStoreError:  # the page says why; the charts show no point
            frame = records_to_frame([])
        rejected_y = live_layout.rejected_y(config.max_backtracks)
        update, held = live_series.plan(frame, previous, run_id, axis, rejected_y)
        if update is None:
            body: dict[str, Any] = {"kind": "same", "epoch": held.epoch, "n": held.n}
        else:
            body = live_layout.payload(update, run_id, axis, config.delta, config.max_backtracks)
        return Answer(200, {**body, "have": token(held), "running": running})
