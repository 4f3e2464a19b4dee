"""Training in background threads, owned by one registry (no Streamlit here).

The dashboard keeps exactly one `TrainingRegistry` per server process. Starting is idempotent:
a start whose config equals that of a live run returns that run instead of launching another, so
reruns, double clicks and a second browser tab never start a second trainer for the same run.
Threads never touch the UI; they write records through the run store, which pages read.
"""

from __future__ import annotations

import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trpo.config import TRPOConfig
from trpo.session import TrainingSession
from trpo.store import RunStore

DEFAULT_MAX_CONCURRENT = 3


class CapacityError(RuntimeError):
    """Too many runs are already training in this process."""


@dataclass
class RunHandle:
    """A run this process is training (or trained): its thread, stop event and outcome."""

    run_id: str
    run_dir: Path
    config: TRPOConfig
    thread: threading.Thread
    stop_event: threading.Event
    started_at: float = field(default_factory=time.time)
    outcome: str | None = None  # finished / stopped / failed once the thread has ended
    error: str | None = None

    @property
    def alive(self) -> bool:
        return self.thread.is_alive()


class TrainingRegistry:
    """Starts, stops and lists background training runs; safe to call from any thread."""

    def __init__(
        self, runs_dir: str | Path = "runs", max_concurrent: int = DEFAULT_MAX_CONCURRENT
    ) -> None:
        self.store = RunStore(runs_dir)
        self.max_concurrent = max_concurrent
        self._lock = threading.Lock()
        self._handles: dict[str, RunHandle] = {}

    # --- starting ------------------------------------------------------------------------
    def start(
        self, config: TRPOConfig, name: str | None = None, tags: dict[str, Any] | None = None
    ) -> RunHandle:
        """Start training config in a thread, or return the live run with the same config."""
        with self._lock:
            for handle in self._handles.values():
                if handle.alive and handle.config == config:
                    return handle
            self._check_capacity()
            session = TrainingSession.new(config, self.store, name=name, tags=tags)
            return self._launch(session)

    def resume(self, run_dir: str | Path, total_steps: int | None = None) -> RunHandle:
        """Continue a stopped run in a thread (returns the live handle if it is running)."""
        run_id = Path(run_dir).name
        with self._lock:
            handle = self._handles.get(run_id)
            if handle is not None and handle.alive:
                return handle
            self._check_capacity()
            session = TrainingSession.resume(str(run_dir), total_steps=total_steps)
            return self._launch(session)

    def _check_capacity(self) -> None:
        live = sum(1 for h in self._handles.values() if h.alive)
        if live >= self.max_concurrent:
            raise CapacityError(
                f"{live} runs are already training (the limit is {self.max_concurrent}); "
                "stop one before starting another"
            )

    def _launch(self, session: TrainingSession) -> RunHandle:
        run = session.run_folder
        stop = threading.Event()
        handle = RunHandle(
            run_id=run.id,
            run_dir=run.path,
            config=session.config,
            thread=threading.Thread(target=lambda: None),
            stop_event=stop,
        )

        def target() -> None:
            try:
                handle.outcome = session.run(stop)
            except BaseException as exc:
                handle.outcome = "failed"
                handle.error = f"{type(exc).__name__}: {exc}"
                traceback.print_exc()

        handle.thread = threading.Thread(target=target, name=f"trpo-{run.id}", daemon=True)
        self._handles[run.id] = handle
        # readers see "running" at once, not the stale state until the thread gets going
        run.set_status("running", iteration=session.trainer.iteration)
        handle.thread.start()
        return handle

    # --- stopping and listing --------------------------------------------------------------
    def stop(self, run_id: str, timeout: float = 0.0) -> bool:
        """Ask a run to stop after its current iteration; wait up to timeout seconds.
        Returns True if the thread has ended."""
        with self._lock:
            handle = self._handles.get(run_id)
        if handle is None:
            return True
        handle.stop_event.set()
        if timeout > 0:
            handle.thread.join(timeout)
        return not handle.alive

    def stop_all(self, timeout: float = 10.0) -> None:
        """Stop every run (used when the registry is released) and wait for them."""
        with self._lock:
            handles = list(self._handles.values())
        for handle in handles:
            handle.stop_event.set()
        deadline = time.monotonic() + timeout
        for handle in handles:
            handle.thread.join(max(0.0, deadline - time.monotonic()))

    def get(self, run_id: str) -> RunHandle | None:
        with self._lock:
            return self._handles.get(run_id)

    def active(self) -> list[RunHandle]:
        with self._lock:
            return [h for h in self._handles.values() if h.alive]

    def handles(self) -> list[RunHandle]:
        with self._lock:
            return list(self._handles.values())


_SHARED: dict[Path, TrainingRegistry] = {}
_SHARED_LOCK = threading.Lock()


def shared_registry(
    runs_dir: str | Path = "runs", max_concurrent: int = DEFAULT_MAX_CONCURRENT
) -> TrainingRegistry:
    """The one registry of this process for runs_dir, created on first use.

    It outlives any cache that hands it out: a dashboard whose cache is cleared gets the same
    registry back, so its runs keep training and are found again (nothing but Stop ends a run).
    """
    key = Path(runs_dir).resolve()
    with _SHARED_LOCK:
        registry = _SHARED.get(key)
        if registry is None:
            registry = _SHARED[key] = TrainingRegistry(runs_dir, max_concurrent)
        registry.max_concurrent = max_concurrent
        return registry
