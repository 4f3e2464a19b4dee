"""Following a run's metrics log as it grows: only the bytes appended since the last read are
parsed (the line format is trpo.metrics_log's; the folder is trpo.store's). Reads only."""

from __future__ import annotations

import functools
import hashlib
import itertools
import logging
import os
import threading
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any

import pandas as pd

from trpo.metrics_log import parse_lines, parse_record, records_to_frame
from trpo.store import METRICS, RunStoreError

log = logging.getLogger("trpo.store")


class MetricsTail:
    """Follows a run's metrics log, parsing only the bytes appended since the last call.

    For live views of long runs: re-reading 2,000 records every second costs far more than the
    new record. Guarantee: `frame()` equals `load_metrics` of the log as it was read, after any
    sequence of appends, truncations, in-place rewrites (shorter, same length or longer) and
    atomic replacements, and with a half-written last line. How:

    - every call stats the file; when its (device, inode, size, mtime, ctime) are those of the
      last call and that read was not racy (below), nothing was written since: no read at all;
    - otherwise the bytes consumed so far must still be the file's first bytes: they are read
      again and compared with the SHA-256 of what was parsed (about 3 ms for a 5 MB log); on a
      difference, or a file shorter than that, the log is parsed again from the start. Then
      only the new complete lines are parsed, and an unterminated last piece is parsed apart
      (it counts if it is a whole record, as in `Run.records`);
    - racy read: a write in the same timestamp tick as the one before it can leave the stat
      unchanged, so a read made less than `RACY_NS` after the file's last change is verified
      again on the next call even if the stat is unchanged (this assumes the file's timestamps
      come from this machine's clock, give or take a second).

    `snapshot()` also gives the frame's version, a number that changes whenever the frame does
    and is unique in the process: a key for caches of anything drawn from the frame. Safe to
    share between threads; the frame must not be modified.
    """

    RACY_NS = 3_000_000_000  # > the coarsest common timestamp granularity (2 s on FAT)
    _CHUNK = 1 << 20

    def __init__(self, run_dir: str | os.PathLike[str]) -> None:
        self.path = Path(run_dir) / METRICS
        self._lock = threading.Lock()
        self._forget()
        self._publish()

    def _forget(self) -> None:
        self._offset = 0  # bytes parsed: always just after a newline
        self._digest = hashlib.sha256()  # of those bytes
        self._rows: list[dict[str, Any]] = []
        self._last: dict[str, Any] | None = None  # the unterminated last piece, if a record
        self._garbage = 0  # complete lines that were not records
        self._stat: tuple[int, ...] | None = None
        self._settled = False

    def _publish(self) -> None:
        rows = self._rows if self._last is None else [*self._rows, self._last]
        self._frame = records_to_frame(rows)
        self.version = next(_TAIL_VERSIONS)

    def frame(self) -> pd.DataFrame:
        """The metrics table of the log now (RunStoreError if it exists but cannot be read)."""
        return self.snapshot()[0]

    @property
    def garbage(self) -> int:
        """Complete lines of the log, as last read, that were not records (skipped)."""
        with self._lock:
            return self._garbage

    def snapshot(self) -> tuple[pd.DataFrame, int]:
        """(frame, version), taken together."""
        with self._lock:
            try:
                stat = os.stat(self.path)
            except FileNotFoundError:
                if self._stat is not None or self._rows or self._last is not None:
                    self._forget()
                    self._publish()
                return self._frame, self.version
            except OSError as exc:
                raise RunStoreError(f"cannot read {self.path}: {exc.strerror or exc}") from exc
            if not (self._settled and _signature(stat) == self._stat):
                self._read()
            return self._frame, self.version

    def _read(self) -> None:
        try:
            with open(self.path, "rb") as handle:
                stat = os.fstat(handle.fileno())
                started = time.time_ns()
                rewritten = not self._prefix_intact(handle, stat.st_size)
                if rewritten:
                    self._forget()
                handle.seek(self._offset)
                data = handle.read()
        except FileNotFoundError:  # replaced between the stat and the open: next call
            return
        except OSError as exc:
            raise RunStoreError(f"cannot read {self.path}: {exc.strerror or exc}") from exc
        rows, garbage, end = parse_lines(data)
        if garbage:
            log.warning("%s: skipped %d unreadable line(s)", self.path, garbage)
            self._garbage += garbage
        last = parse_record(data[end:])
        changed = rewritten or bool(rows) or last != self._last
        self._rows.extend(rows)
        self._digest.update(data[:end])
        self._offset += end
        self._last = last
        self._stat = _signature(stat)
        self._settled = started - max(stat.st_mtime_ns, stat.st_ctime_ns) > self.RACY_NS
        if changed:
            self._publish()

    def _prefix_intact(self, handle: Any, size: int) -> bool:
        """Whether the file still starts with the bytes parsed so far."""
        if size < self._offset:
            return False
        digest = hashlib.sha256()
        left = self._offset
        while left:
            chunk = handle.read(min(left, self._CHUNK))
            if not chunk:
                return False
            digest.update(chunk)
            left -= len(chunk)
        return digest.digest() == self._digest.digest()


_TAIL_VERSIONS = itertools.count(1)


def _signature(stat: os.stat_result) -> tuple[int, ...]:
    return (stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns)


class TailCache:
    """At most `max_runs` MetricsTail, one per run folder (by its resolved path); the least
    recently asked for is dropped first.

    Why: every live view of a run (a page refresh, the live charts' route) should parse each new
    record once, however many tabs watch it, and a server that showed thousands of runs should
    not keep them all. Safe to share between threads."""

    def __init__(self, max_runs: int = 64) -> None:
        if max_runs < 1:
            raise ValueError("max_runs must be >= 1")
        self.max_runs = max_runs
        self._lock = threading.Lock()
        self._tails: OrderedDict[Path, MetricsTail] = OrderedDict()

    def get(self, run_dir: str | os.PathLike[str]) -> MetricsTail:
        """The tail of this run folder's log (made on first use)."""
        key = Path(run_dir).resolve()
        with self._lock:
            tail = self._tails.get(key)
            if tail is None:
                tail = self._tails[key] = MetricsTail(key)
                while len(self._tails) > self.max_runs:
                    self._tails.popitem(last=False)
            else:
                self._tails.move_to_end(key)
            return tail

    def __len__(self) -> int:
        with self._lock:
            return len(self._tails)


@functools.cache
def shared_tails() -> TailCache:
    """The process's TailCache: the dashboard's pages and its live-charts route read each log
    through it (made on first use, not at import)."""
    return TailCache(max_runs=256)
