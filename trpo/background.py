"""Trainer processes, launched and watched by one registry (no Streamlit here).

The dashboard keeps one `TrainingRegistry` per runs directory. Each run trains in its own
process (`trpo.trainer_process`), watched by a thread of the registry that records how the
process ended. Starting is idempotent: a start whose config equals that of a live run returns
that run, so reruns, double clicks and a second browser tab never start a second trainer. The
cap counts live trainer processes the dashboard started, those of an earlier server included:
a new registry finds the runs still training (after a cache clear or a server restart) in the
run store and can stop them. Stop is a request through the store (`Run.request_stop`), so it
reaches any trainer, CLI runs included, and takes effect after the current iteration.
"""

from __future__ import annotations

import contextlib
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trpo import trainer_process
from trpo.config import ConfigError, TRPOConfig
from trpo.envs import check_env_contract, check_env_id
from trpo.session import TrainingSession, check_resume_budget
from trpo.store import Run, RunStore, RunStoreError, open_run

DEFAULT_MAX_CONCURRENT = 3
LAUNCHER = "dashboard"  # meta.json "launcher" of the runs a registry starts


class CapacityError(RuntimeError):
    """Too many trainer processes are already running."""


@dataclass
class RunHandle:
    """A run the registry started (or found still training): its process and outcome.

    process is None for a run found in the store (started by an earlier registry); its
    liveness is then the store's (the pid in status.json)."""

    run_id: str
    run_dir: Path
    config: TRPOConfig
    process: subprocess.Popen[bytes] | None
    started_at: float = field(default_factory=time.time)
    outcome: str | None = None  # finished / stopped / failed once the process has ended
    error: str | None = None

    @property
    def alive(self) -> bool:
        """Training: the process lives and has not yet written its final state (a process
        that has is only closing its envs, and no longer counts towards the cap)."""
        if self.process is not None and self.process.poll() is not None:
            return False
        return Run(self.run_dir).state() == "running"

    def wait(self, timeout: float) -> bool:
        """Wait up to timeout seconds for the trainer to end; True if it has."""
        deadline = time.monotonic() + timeout
        while self.alive:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)
        return True


class TrainingRegistry:
    """Starts, stops and lists trainer processes; safe to call from any thread."""

    def __init__(
        self, runs_dir: str | Path = "runs", max_concurrent: int = DEFAULT_MAX_CONCURRENT
    ) -> None:
        self.store = RunStore(runs_dir)
        self.max_concurrent = max_concurrent
        self._lock = threading.Lock()
        self._handles: dict[str, RunHandle] = {}
        self._find_live_runs()

    def _find_live_runs(self) -> None:
        """Adopt the dashboard's runs that are still training (started by an earlier server
        or registry): they count towards the cap and can be stopped."""
        for run in self.store.runs():
            if run.meta().get("launcher") != LAUNCHER or run.state() != "running":
                continue
            try:
                config = run.config()
            except (RunStoreError, ConfigError):
                continue
            self._handles[run.id] = RunHandle(run.id, run.path, config, process=None)

    # --- starting ------------------------------------------------------------------------
    def start(
        self, config: TRPOConfig, name: str | None = None, tags: dict[str, Any] | None = None
    ) -> RunHandle:
        """Start a trainer process for config, or return the live run with the same config.

        Raises CapacityError when the cap is reached, EnvError when the env cannot be made or
        breaks its declared spaces (before any folder is created), RunStoreError when the
        run folder cannot be written."""
        with self._lock:
            for handle in self._handles.values():
                if handle.alive and handle.config == config:
                    return handle
            self._check_capacity()
            check_env_id(config.env_id)
            check_env_contract(config.env_id)
            run = self.store.create(config, name=name, tags=tags, launcher=LAUNCHER)
            return self._launch(run, config)

    def resume(self, run_dir: str | Path, total_steps: int | None = None) -> RunHandle:
        """Continue a stopped or interrupted run in a trainer process (returns the live handle
        if it is training). Raises RunStoreError / ConfigError for a run that cannot be
        resumed (unreadable, or total_steps not above what it has trained)."""
        run = open_run(run_dir)
        with self._lock:
            handle = self._handles.get(run.id)
            if handle is not None and handle.alive:
                return handle
            if run.state() == "running":
                raise RunStoreError(f"run {run.id} is already training in another process")
            self._check_capacity()
            config = self._check_resumable(run, total_steps)
            run.clear_stop_request()
            return self._launch(run, config, total_steps)

    @staticmethod
    def _check_resumable(run: Run, total_steps: int | None) -> TRPOConfig:
        """Everything the trainer process would refuse, said here at once: the session is
        built (config, checkpoint and its fit to the networks, budget) and closed again."""
        session = TrainingSession.resume(str(run.path), total_steps=total_steps)
        try:
            done, config = session.trainer.env_steps, session.config
        finally:
            session.trainer.close()
        check_resume_budget(run, config.total_steps, done)
        return config

    def _check_capacity(self) -> None:
        live = sum(1 for h in self._handles.values() if h.alive)
        if live >= self.max_concurrent:
            raise CapacityError(
                f"{live} runs are already training (the limit is {self.max_concurrent}); "
                "stop one before starting another"
            )

    def _launch(self, run: Run, config: TRPOConfig, total_steps: int | None = None) -> RunHandle:
        try:
            process = trainer_process.spawn(run, total_steps)
        except OSError as exc:
            run.set_status("failed", error=f"could not start a trainer process: {exc}")
            raise RunStoreError(f"could not start a trainer process: {exc}") from exc
        handle = RunHandle(run.id, run.path, config, process)
        self._handles[run.id] = handle
        threading.Thread(
            target=self._watch, args=(handle, run), name=f"trpo-watch-{run.id}", daemon=True
        ).start()
        return handle

    @staticmethod
    def _watch(handle: RunHandle, run: Run) -> None:
        """Wait for the process; a trainer that died without a final state is marked failed,
        so no run stays 'running' with nothing training it."""
        assert handle.process is not None
        code = handle.process.wait()
        status = run.status()
        if status.get("state") == "running":
            tail = trainer_process.log_tail(run)
            error = f"the trainer process ended with exit code {code}" + (
                f": {tail}" if tail else ""
            )
            with contextlib.suppress(OSError):
                run.set_status("failed", error=error, pid=handle.process.pid)
            status = {"state": "failed", "error": error}
        handle.outcome = str(status.get("state"))
        handle.error = status.get("error")

    # --- stopping and listing --------------------------------------------------------------
    def stop(self, run_id: str, timeout: float = 0.0) -> bool:
        """Ask a run to stop after its current iteration (any run of the store: the
        dashboard's or a CLI run); wait up to timeout seconds. True if it is no longer
        training."""
        with self._lock:
            handle = self._handles.get(run_id)
        run = Run(handle.run_dir if handle else self.store.root / run_id)
        if handle is None and run.state() != "running":
            return True
        run.request_stop()
        if handle is not None:
            return handle.wait(timeout)
        deadline = time.monotonic() + timeout
        while run.state() == "running" and time.monotonic() < deadline:
            time.sleep(0.05)
        return run.state() != "running"

    def stop_all(self, timeout: float = 10.0) -> None:
        """Stop every live run this registry knows and wait for them (tests, shutdown)."""
        for handle in self.active():
            Run(handle.run_dir).request_stop()
        deadline = time.monotonic() + timeout
        for handle in self.active():
            handle.wait(max(0.0, deadline - time.monotonic()))

    def get(self, run_id: str) -> RunHandle | None:
        with self._lock:
            return self._handles.get(run_id)

    def active(self) -> list[RunHandle]:
        with self._lock:
            handles = list(self._handles.values())
        return [h for h in handles if h.alive]

    def handles(self) -> list[RunHandle]:
        with self._lock:
            return list(self._handles.values())
