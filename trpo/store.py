"""The run store: one folder per run, append-only metrics, status, atomic checkpoints.

Layout of a run folder (names made by the program; a user-given name is metadata only):
    config.json        the TRPOConfig
    meta.json          name, created time, tags (e.g. sweep id), launcher (e.g. dashboard)
    status.json        running / finished / pruned / stopped / failed, with the error message
                       and the pid of the process training it (pruned: a sweep's pruner stopped
                       it early for good)
    stop.request       present while a stop has been asked for (by any process), with the
                       reason (e.g. pruned); the trainer stops after its current iteration
    trainer.log        stdout and stderr of a trainer process started by the dashboard
    metrics.jsonl      one IterationRecord per line, flushed as written
    checkpoint.safetensors   latest trainer state (tensors + JSON metadata), replaced atomically

Only this module writes run files, and only it and trpo.metrics_tail (the live reader of the
log) read them; the log's line format is trpo.metrics_log's.
Checkpoints are safetensors: no pickle anywhere.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import tempfile
import unicodedata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save as save_safetensors_bytes

from trpo.checkpoint import Checkpoint
from trpo.config import ConfigError, TRPOConfig
from trpo.ids import fresh_folder, process_alive, utc_now
from trpo.metrics_log import parse_lines, parse_record, records_to_frame
from trpo.record import IterationRecord

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger("trpo.store")

DEFAULT_RUNS_DIR = "runs"
PRUNED = "pruned"  # stopped early by a sweep's pruner: final, unlike "stopped"
STATES = ("running", "finished", PRUNED, "stopped", "failed")
MAX_NAME_LENGTH = 200
CHECKPOINT = "checkpoint.safetensors"
METRICS = "metrics.jsonl"
STOP_REQUEST = "stop.request"
TRAINER_LOG = "trainer.log"
#: The files that make a run (what a remote trial sends home); the rest is scratch. unpack()
#: writes them in this order, status last: a reader never sees 'finished' before the metrics.
RUN_FILES = ("config.json", "meta.json", METRICS, CHECKPOINT, "status.json")


class RunStoreError(RuntimeError):
    """A run folder that cannot be read or written, with the reason."""


def clean_name(name: str | None) -> str:
    """A display name: printable characters only, at most 200; never used as a path."""
    if not name:
        return ""
    text = "".join(ch for ch in str(name) if unicodedata.category(ch)[0] != "C")
    return text.strip()[:MAX_NAME_LENGTH]


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write to a temp file in the same folder, fsync, rename over path, fsync the folder."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), 0o644)
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def atomic_write_json(path: Path, data: Any) -> None:
    atomic_write_bytes(path, (json.dumps(data, indent=2, sort_keys=True) + "\n").encode())


class Run:
    """One run folder."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    @property
    def id(self) -> str:
        return self.path.name

    # --- config, meta, status ---------------------------------------------------------------
    def config(self) -> TRPOConfig:
        """The run's config: RunStoreError if config.json cannot be read, ConfigError if it
        does not hold a valid config."""
        try:
            text = (self.path / "config.json").read_bytes().decode()
        except OSError as exc:
            raise RunStoreError(f"{self.path}: cannot read config.json ({exc})") from exc
        except UnicodeDecodeError as exc:
            raise ConfigError([f"config is not UTF-8 text ({exc})"]) from exc
        return TRPOConfig.from_json(text)

    def write_config(self, config: TRPOConfig) -> None:
        atomic_write_bytes(self.path / "config.json", (config.to_json() + "\n").encode())

    def meta(self) -> dict[str, Any]:
        """meta.json, without a name, created time or tags of the wrong type ({} if unreadable)."""
        data = self._read_json("meta.json", {})
        for key, kind in (("name", str), ("created", str), ("tags", dict), ("launcher", str)):
            if not isinstance(data.get(key, kind()), kind):
                del data[key]
        return data

    def add_tags(self, **tags: Any) -> None:
        """Add (or replace) tags in meta.json, e.g. the Ray node a sweep trial ran on."""
        data = self._read_json("meta.json", {})
        data["tags"] = {**(data.get("tags") if isinstance(data.get("tags"), dict) else {}), **tags}
        atomic_write_json(self.path / "meta.json", data)

    def status(self) -> dict[str, Any]:
        return self._read_json("status.json", {"state": "unknown"})

    def state(self) -> str:
        """The status's state, with 'interrupted' for a run marked running whose process
        (on this machine) no longer exists: it was killed and can be resumed."""
        status = self.status()
        state = str(status.get("state", "unknown"))
        pid = status.get("pid")
        if state == "running" and isinstance(pid, int) and not process_alive(pid):
            return "interrupted"
        return state

    def set_status(
        self, state: str, error: str | None = None, pid: int | None = None, **extra: Any
    ) -> None:
        """Write status.json; pid is the training process (default: this one)."""
        if state not in STATES:
            raise ValueError(f"unknown run state {state!r}")
        pid = os.getpid() if pid is None else pid
        data = {"state": state, "error": error, "updated": utc_now(), "pid": pid, **extra}
        atomic_write_json(self.path / "status.json", data)

    # --- stop requests: how any process asks the run's trainer to stop ----------------------
    def request_stop(self, reason: str | None = None) -> None:
        """Ask whoever trains this run to stop after its current iteration (with a checkpoint).
        reason "pruned": a sweep's pruner asks, and the run ends "pruned" instead of "stopped"."""
        data: dict[str, Any] = {"requested": utc_now()}
        if reason is not None:
            data["reason"] = reason
        atomic_write_json(self.path / STOP_REQUEST, data)

    def stop_requested(self) -> bool:
        return (self.path / STOP_REQUEST).exists()

    def stop_reason(self) -> str | None:
        """The reason of the pending stop request (None: none given, or no request)."""
        reason = self._read_json(STOP_REQUEST, {}).get("reason")
        return reason if isinstance(reason, str) else None

    def clear_stop_request(self) -> None:
        (self.path / STOP_REQUEST).unlink(missing_ok=True)

    def _read_json(self, name: str, default: dict[str, Any]) -> dict[str, Any]:
        try:
            data = json.loads((self.path / name).read_bytes())
        except (OSError, ValueError):  # missing, unreadable, not JSON or not UTF-8
            return dict(default)
        return data if isinstance(data, dict) else dict(default)

    # --- metrics ----------------------------------------------------------------------------
    def append(self, record: IterationRecord) -> None:
        """Append one record as a JSON line, flushed to the OS before returning."""
        line = json.dumps(record.to_dict(), separators=(",", ":"), allow_nan=False) + "\n"
        try:
            with open(self.path / METRICS, "a", encoding="utf-8") as handle:
                handle.write(line)
                handle.flush()
        except OSError as exc:
            raise RunStoreError(
                f"cannot append to {self.path / METRICS}: {exc.strerror or exc}"
            ) from exc

    def records(self) -> list[IterationRecord]:
        """Every record of the metrics log, typed (`IterationRecord.from_dict`: a field an older
        version did not write is None)."""
        return [IterationRecord.from_dict(row) for row in self.rows()]

    def rows(self) -> list[dict[str, Any]]:
        """Every record of the metrics log as written, unknown fields kept (see
        trpo.metrics_log for the lines skipped); a warning names how many complete lines were
        garbage."""
        path = self.path / METRICS
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise RunStoreError(f"cannot read {path}: {exc.strerror or exc}") from exc
        rows, garbage, end = parse_lines(raw)
        last = parse_record(raw[end:])
        if last is not None:
            rows.append(last)
        if garbage:
            log.warning("%s: skipped %d unreadable line(s) in %s", self.path, garbage, METRICS)
        return rows

    def remove_stale_temp_files(self) -> None:
        """Temp files of writes interrupted by a crash (their target is still intact)."""
        for path in self.path.glob(".*.tmp"):
            path.unlink(missing_ok=True)

    def truncate_metrics(self, last_iteration: int) -> None:
        """Keep only records with iteration <= last_iteration (used when resuming)."""
        keep = [r for r in self.rows() if r["iteration"] <= last_iteration]
        text = "".join(json.dumps(r, separators=(",", ":")) + "\n" for r in keep)
        atomic_write_bytes(self.path / METRICS, text.encode())

    # --- checkpoints --------------------------------------------------------------------------
    def save_checkpoint(self, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
        data = save_safetensors_bytes(
            {k: v.contiguous() for k, v in tensors.items()}, metadata={"trpo": json.dumps(meta)}
        )
        try:
            atomic_write_bytes(self.path / CHECKPOINT, data)
        except OSError as exc:
            raise RunStoreError(
                f"cannot write the checkpoint in {self.path}: {exc.strerror or exc} "
                "(the previous checkpoint is intact)"
            ) from exc

    def pack(self) -> dict[str, bytes]:
        """The run's files (RUN_FILES) by name, as bytes: a run to send to another machine."""
        return {n: (self.path / n).read_bytes() for n in RUN_FILES if (self.path / n).is_file()}

    def unpack(self, files: dict[str, bytes], keep_meta: bool = False) -> None:
        """Write files made by pack() into this run (known names only, each replaced
        atomically); keep_meta keeps this run's meta.json (its name and tags)."""
        for name in RUN_FILES:
            if name in files and not (keep_meta and name == "meta.json"):
                atomic_write_bytes(self.path / name, files[name])

    def has_checkpoint(self) -> bool:
        return (self.path / CHECKPOINT).is_file()

    def load_checkpoint(self) -> Checkpoint:
        """Read the checkpoint (safetensors only, never pickle)."""
        path = self.path / CHECKPOINT
        try:
            with safe_open(path, framework="pt") as handle:  # one open file: one checkpoint
                text = (handle.metadata() or {})["trpo"]
                tensors = {name: handle.get_tensor(name) for name in handle.keys()}  # noqa: SIM118
            meta = json.loads(text)
        except FileNotFoundError as exc:
            raise RunStoreError(f"{self.path}: no checkpoint to load ({exc})") from exc
        except (SafetensorError, OSError, ValueError, KeyError, TypeError) as exc:
            raise RunStoreError(f"{path} is not a valid checkpoint: {exc}") from exc
        if not isinstance(meta, dict):
            raise RunStoreError(f"{path} is not a valid checkpoint: metadata is not an object")
        return Checkpoint(tensors, meta, hashlib.sha256(text.encode()).hexdigest())


class RunStore:
    """The runs directory: creates run folders and lists them."""

    def __init__(self, root: str | os.PathLike[str] = DEFAULT_RUNS_DIR) -> None:
        self.root = Path(root)

    def create(
        self,
        config: TRPOConfig,
        name: str | None = None,
        tags: dict[str, Any] | None = None,
        launcher: str = "",
    ) -> Run:
        """A new run folder named <time>-<env>-<random>; name, tags and launcher (who started
        it, e.g. "dashboard") go in meta.json."""
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            folder = fresh_folder(self.root, config.env_id)
            run = Run(folder)
            run.write_config(config)
            atomic_write_json(
                folder / "meta.json",
                {
                    "name": clean_name(name),
                    "created": utc_now(),
                    "tags": dict(tags or {}),
                    "launcher": launcher,
                },
            )
            (folder / METRICS).touch()
            run.set_status("running")
        except OSError as exc:
            raise RunStoreError(f"cannot create a run under {self.root}: {exc}") from exc
        return run

    def runs(self) -> list[Run]:
        """Every run folder (has config.json), newest first: by the creation second in the id,
        then (runs made within one second) by when config.json was written."""
        if not self.root.is_dir():
            return []
        found = []
        for path in self.root.iterdir():
            try:
                written = (path / "config.json").stat().st_mtime_ns
            except OSError:  # not a run folder (or removed meanwhile)
                continue
            found.append((path.name[:15], written, path.name, Run(path)))
        found.sort(key=lambda item: item[:3], reverse=True)
        return [item[3] for item in found]

    def delete(self, run: Run) -> None:
        """Remove a run folder: only a direct child of this store's root that holds config.json,
        never a run marked running by a live process. Raises RunStoreError with the reason."""
        path = run.path
        if path.is_symlink() or path.parent.resolve() != self.root.resolve():
            raise RunStoreError(f"{path} is not a run folder inside {self.root}")
        if not (path / "config.json").is_file():
            raise RunStoreError(f"{path} has no config.json: not a run folder")
        if run.state() == "running":
            raise RunStoreError(f"{run.id} is training in another process: stop it first")
        try:
            shutil.rmtree(path)
        except OSError as exc:
            raise RunStoreError(f"cannot delete {path}: {exc}") from exc


def open_run(run_dir: str | os.PathLike[str]) -> Run:
    """A Run for an existing folder, or RunStoreError."""
    path = Path(run_dir)
    if not (path / "config.json").is_file():
        raise RunStoreError(f"{path} is not a run folder (no config.json)")
    return Run(path)


def load_metrics(run_dir: str | os.PathLike[str]) -> pd.DataFrame:
    """One row per iteration (the last record wins if an iteration repeats after a resume).

    Missing values (no finished episode, rejected step) are NaN; backtrack_index is float so
    that a rejected step can be NaN.
    """
    return records_to_frame(open_run(run_dir).rows())
