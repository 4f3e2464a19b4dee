"""Names on disk, made in one place: UTC timestamps, slugs, fresh folders named
<time>-<label>-<random>, and whether a process id is alive on this machine. The run store and
the sweeps both use them."""

from __future__ import annotations

import os
import re
import secrets
import time
from datetime import UTC, datetime
from pathlib import Path


def utc_now() -> str:
    """The current UTC time, ISO 8601 to the second (e.g. 2026-12-01T03:20:00+00:00)."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def slug(text: str, fallback: str = "run") -> str:
    """text reduced to letters, digits and '-' (at most 40 characters), or fallback."""
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-")[:40] or fallback


def fresh_folder(root: Path, label: str) -> Path:
    """Create and return a new folder root/<YYYYmmdd-HHMMSS>-<slug(label)>-<6 hex digits>.

    mkdir is atomic, so two processes never get the same folder. Raises FileExistsError after
    100 collisions (24 random bits each: not expected) and OSError if root is not writable."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for _ in range(100):
        folder = root / f"{stamp}-{slug(label)}-{secrets.token_hex(3)}"
        try:
            folder.mkdir()
            return folder
        except FileExistsError:
            continue
    raise FileExistsError(f"could not pick a fresh folder name in {root}")


def process_alive(pid: int) -> bool:
    """Whether a process with this pid exists on this machine (signal 0 probes it; a process of
    another user counts as alive)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
