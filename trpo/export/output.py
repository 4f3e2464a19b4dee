"""Where an export goes: the checks that make a bad --out fail before any work is done, and
the atomic write (a reader never sees half a file; a failed export leaves no file)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from trpo.store import atomic_write_bytes


class ExportError(ValueError):
    """An export that cannot be done (unknown format, an --out that cannot be written), with
    the reason in words."""


def _probe(folder: Path) -> None:
    """Create and remove a temp file in folder: ExportError if that is refused."""
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise ExportError(f"cannot write in {folder}: {exc.strerror or exc}") from exc


def file_target(out: str | os.PathLike[str], suffix: str) -> Path:
    """out as a Path, once it is known that a file can be written there: not a folder, in a
    folder that exists and takes new files. Raises ExportError naming the problem."""
    path = Path(out)
    if path.is_dir():
        raise ExportError(f"--out {path} is a folder; give a file name such as {path / suffix}")
    folder = path.parent
    if not folder.is_dir():
        what = "is not a folder" if folder.exists() else "does not exist"
        raise ExportError(f"cannot write {path}: {folder} {what}")
    _probe(folder)
    return path


def folder_target(out: str | os.PathLike[str]) -> Path:
    """out as a folder that exists (created with its parents if needed) and takes new files.
    Raises ExportError naming the problem."""
    path = Path(out)
    if path.exists() and not path.is_dir():
        raise ExportError(f"--out {path} is a file; give a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ExportError(f"cannot create the folder {path}: {exc.strerror or exc}") from exc
    _probe(path)
    return path


def write_file(path: Path, data: bytes) -> Path:
    """Write data to path atomically (temp file, fsync, rename); ExportError if that fails."""
    try:
        atomic_write_bytes(path, data)
    except OSError as exc:
        raise ExportError(f"cannot write {path}: {exc.strerror or exc}") from exc
    return path
