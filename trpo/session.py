"""A training session: one trainer writing one run folder (records, checkpoints, status).

Used by the CLI, the dashboard's background threads and sweep workers alike, so a run looks the
same in the store whoever started it. A run stops after the current iteration when
the caller's event is set or when any process asked it to through the store
(`Run.request_stop`): that is how the dashboard stops a trainer process, or a CLI run.

Order of writes per iteration: the record is appended first, then the checkpoint; after a crash
the metrics may be one iteration ahead of the checkpoint, and `resume` reconciles them by
dropping records past the checkpoint.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from typing import Any

import torch

from trpo.checkpoint import Checkpoint
from trpo.config import ConfigError, TRPOConfig
from trpo.record import IterationRecord
from trpo.store import CHECKPOINT, PRUNED, Run, RunStore, RunStoreError, open_run
from trpo.trainer import Trainer
from trpo.training_errors import StateMismatchError, TrainingError

OnRecord = Callable[[IterationRecord], None]


class StopFlag:
    """Set once the caller's event is set or a stop was requested through the run store
    (a file check per iteration, negligible next to an iteration)."""

    def __init__(self, event: threading.Event | None, run: Run) -> None:
        self.event = event
        self.run = run

    def is_set(self) -> bool:
        return (self.event is not None and self.event.is_set()) or self.run.stop_requested()


def trained_steps(state: Checkpoint | None) -> int:
    """Env steps a checkpoint has trained (0 without one)."""
    return int(state.meta.get("env_steps", 0)) if state is not None else 0


def check_resume_budget(run: Run, total_steps: int | None, done: int | None = None) -> None:
    """ConfigError unless the run has steps left to train: total_steps (default: its config's)
    must be more than the done steps its checkpoint has trained (read when not given)."""
    if done is None:
        checkpoint = run.load_checkpoint() if run.has_checkpoint() else None
        done = trained_steps(checkpoint)
    budget = run.config().total_steps if total_steps is None else total_steps
    if budget <= done:
        raise ConfigError(
            [
                f"total_steps ({budget:,}) must be more than the {done:,} steps "
                f"this run has already trained; give a larger budget to continue it"
            ]
        )


def use_torch_threads(config: TRPOConfig) -> None:
    """Give torch config.torch_threads threads in this process. Process-wide, so it is for the
    owner of a process that exists to train (CLI train, trainer process, sweep worker), not
    for the Trainer, which a program may build beside work of its own."""
    torch.set_num_threads(config.torch_threads)


class TrainingSession:
    """Create with `new` or `resume`, then call `run` (blocking) in any thread."""

    def __init__(self, run: Run, trainer: Trainer) -> None:
        self.run_folder = run
        self.trainer = trainer

    @classmethod
    def new(
        cls,
        config: TRPOConfig,
        store: RunStore,
        name: str | None = None,
        tags: dict[str, Any] | None = None,
        launcher: str = "",
    ) -> TrainingSession:
        """Build the trainer first (so a bad env creates no folder), then the run folder;
        launcher says who started it (meta.json: "CLI", "dashboard", a sweep)."""
        trainer = Trainer(config)
        try:
            run = store.create(config, name=name, tags=tags, launcher=launcher)
        except BaseException:
            trainer.close()
            raise
        return cls(run, trainer)

    @classmethod
    def resume(cls, run_dir: str, total_steps: int | None = None) -> TrainingSession:
        """Continue a run from its last checkpoint (or from scratch if it has none)."""
        run = open_run(run_dir)
        config = run.config()
        state = run.load_checkpoint() if run.has_checkpoint() else None
        if total_steps is not None:
            check_resume_budget(run, total_steps, trained_steps(state))
        if total_steps is not None and total_steps != config.total_steps:
            config = config.replace(total_steps=total_steps)
        try:
            trainer = Trainer(config, state)
        except StateMismatchError as exc:
            raise RunStoreError(
                f"{run.path / CHECKPOINT} does not match the run's config.json: {exc}"
            ) from exc
        try:
            run.remove_stale_temp_files()
            if config != run.config():
                run.write_config(config)
            run.truncate_metrics(trainer.iteration)
        except BaseException:
            trainer.close()
            raise
        return cls(run, trainer)

    @property
    def config(self) -> TRPOConfig:
        return self.trainer.config

    def run(self, stop: threading.Event | None = None, on_record: OnRecord | None = None) -> str:
        """Train until done or stopped (stop set, or `Run.request_stop` from any process);
        return the final state. On an exception the run is marked failed (with the iteration
        and message) and the exception is re-raised. A stop request is consumed at the end; one
        made by a sweep's pruner (reason "pruned") ends the run "pruned" instead of "stopped"."""
        run, trainer = self.run_folder, self.trainer
        every = self.config.checkpoint_every
        saved_at = trainer.iteration
        try:
            run.set_status("running", iteration=trainer.iteration)
            for record in trainer.run(StopFlag(stop, run)):
                run.append(record)
                if record.iteration % every == 0:
                    self._checkpoint()
                    saved_at = record.iteration
                if on_record is not None:
                    on_record(record)
            if trainer.iteration != saved_at or not run.has_checkpoint():
                self._checkpoint()
            done = trainer.env_steps >= self.config.total_steps
            pruned = not done and run.stop_reason() == PRUNED  # a sweep's pruner asked
            state = "finished" if done else PRUNED if pruned else "stopped"
            run.set_status(state, iteration=trainer.iteration)
            return state
        except KeyboardInterrupt:  # an abort: the last checkpoint stands, resume continues it
            with contextlib.suppress(OSError):
                run.set_status("stopped", iteration=saved_at)
            raise
        except BaseException as exc:
            message = (
                str(exc)  # already names the iteration and the cause
                if isinstance(exc, TrainingError)
                else f"iteration {trainer.iteration + 1}: {type(exc).__name__}: {exc}"
            )
            with contextlib.suppress(OSError):
                run.set_status("failed", error=message, iteration=trainer.iteration)
            raise
        finally:
            trainer.close()
            with contextlib.suppress(OSError):
                run.clear_stop_request()

    def _checkpoint(self) -> None:
        state = self.trainer.state()
        self.run_folder.save_checkpoint(state.tensors, state.meta)
