"""Optuna, the search engine of sweeps: the sampler and pruner a spec asks for, the study (in a
real database), a knob spec turned into `trial.suggest_*` calls, an Optuna trial turned into our
`Trial` (one configuration, one seed), and what the driver reports and tells.

Everything Optuna lives here, and Optuna is imported inside the functions: importing trpo.sweep
imports neither Optuna nor SQLAlchemy, and the trial workers never do (they know nothing of the
study, see "pruning" below).

Seeds: one Optuna trial per run, that is per (configuration, seed). The sampler chooses a
configuration for the first seed; the configuration's other seeds are queued in the study with
the same parameters (`Study.enqueue_trial`), so every seed of a configuration runs exactly the
same knobs. Why not one Optuna trial per configuration (valued by the mean over seeds): pruning
judges a learning curve step by step against the other curves at the same step, and a run has
one curve while a configuration has one per seed, its seeds possibly running at different times;
a per-run trial also maps one to one onto the run store (a run's state is its trial's state,
resume needs no bookkeeping). The samplers see the seeds of a configuration as repeated noisy
measurements of the same point, which is what they assume of any objective. The study's value
for a trial is its run's final return (trpo.sweep.results: the mean return over the last 10% of
its iterations); the ranking across seeds is the results table (`sweep_results`); the study's
own `best_trial` is the best single run.

Pruning: the driver (the one process that talks to the study) follows each running trial's
metrics log, reports every iteration's mean return (`trial.report(value, step=iteration)`) and
asks `trial.should_prune()`; on yes it asks the run to stop through the run store
(`Run.request_stop(reason="pruned")`, a file its trainer checks every iteration), so the trial
stops after its current iteration with a checkpoint, exactly like a stop, and ends with the
state 'pruned'. The Ray backend forwards the request to its task through its channel. Why the
driver and not the workers: the workers need no Optuna and no database connection (a Ray
worker on another machine could not even reach the default SQLite file), the database has one
writer per sweep, and the local and Ray backends prune the same way. The price is the driver's
polling delay (a quarter of a second): a run may train one more iteration before it stops.

States: a finished run is a COMPLETE trial (its final return, or FAIL when no episode ended in
the final iterations), a pruned run a PRUNED one. A run that stopped, failed or was interrupted
stays RUNNING in the study (the attributes say why): it is resumable, and a resume continues the
same Optuna trial from the run's checkpoint.

Grid search draws exactly the grid's configurations (Optuna's GridSampler, in its shuffled
order); random and TPE search may propose a configuration again: it runs again, under the trial
id '<config_id>-s<seed>-r<k>'.
"""

from __future__ import annotations

import contextlib
import math
import re
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trpo.config import ConfigError
from trpo.sweep.spec import (
    KNOBS,
    KnobRange,
    SweepError,
    SweepSpec,
    Trial,
    is_int,
    make_trial,
    show_value,
)

if TYPE_CHECKING:
    import optuna

STUDY_FILE = "study.db"
MAX_INVALID_DRAWS = 100  # proposals in a row that are not valid configs before giving up
_PASSWORD = re.compile(r"(://[^:/@]+:)[^@]*@")


def storage_url(spec: SweepSpec, sweep_dir: str | Path) -> str:
    """The study's database: the spec's storage URL, else SQLite in the sweep folder."""
    if spec.storage:
        return spec.storage
    return f"sqlite:///{(Path(sweep_dir) / STUDY_FILE).resolve()}"


def shown_url(url: str) -> str:
    """A storage URL for messages, its password hidden."""
    return _PASSWORD.sub(r"\1***@", url)


def open_storage(url: str) -> optuna.storages.RDBStorage:
    """Optuna's RDB storage at url (its tables created if need be); ConfigError if it cannot
    be opened (an unknown database, a missing driver, a server that does not answer)."""
    import optuna

    engine: dict[str, Any] = {}
    if url.startswith("sqlite"):
        engine["connect_args"] = {"timeout": 60}  # readers (optuna-dashboard) hold locks too
    try:
        return optuna.storages.RDBStorage(url, engine_kwargs=engine)
    except Exception as exc:  # SQLAlchemy's errors, ImportError for a missing driver, ...
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise ConfigError(
            [f"storage {shown_url(url)}: cannot open it ({type(exc).__name__}: {reason})"]
        ) from exc


def check_storage(url: str) -> None:
    """ConfigError unless Optuna can open the storage at url."""
    storage = open_storage(url)
    with contextlib.suppress(Exception):
        storage.engine.dispose()


def make_sampler(spec: SweepSpec, offset: int = 0) -> optuna.samplers.BaseSampler:
    """Optuna's sampler for spec.search, seeded by spec.sample_seed. offset: trials already
    in the study; random and TPE samplers of a resumed sweep are seeded with it too, so that
    they do not draw the first launch's configurations again (the grid sampler must keep its
    seed: it is the grid's order)."""
    from optuna.samplers import GridSampler, RandomSampler, TPESampler

    if spec.search == "grid":

        class Grid(GridSampler):
            # GridSampler calls study.stop() once every point has been tried, which only works
            # inside study.optimize; the driver asks for exactly the configurations it runs.
            def after_trial(self, *args: Any, **kwargs: Any) -> None:
                return None

        space = {k: [_encode(k, v) for v in values] for k, values in spec.grid.items()}
        return Grid(space, seed=spec.sample_seed)  # type: ignore[arg-type]
    seed = spec.sample_seed if offset == 0 else (spec.sample_seed * 1_000_003 + offset) % 2**32
    if spec.search == "random":
        return RandomSampler(seed=seed)
    # the first 10 trials are random (n_startup_trials); parallel asks are not kept apart
    return TPESampler(seed=seed)


def make_pruner(spec: SweepSpec) -> optuna.pruners.BasePruner:
    """Optuna's pruner for spec.pruner (see SweepSpec for pruner_startup and pruner_warmup)."""
    from optuna.pruners import HyperbandPruner, MedianPruner, NopPruner

    if spec.pruner == "median":
        return MedianPruner(n_startup_trials=spec.pruner_startup, n_warmup_steps=spec.pruner_warmup)
    if spec.pruner == "hyperband":
        return HyperbandPruner(min_resource=spec.pruner_warmup or "auto")
    return NopPruner()


def _encode(knob: str, value: Any) -> Any:
    """A knob value as an Optuna categorical choice (None, bool, int, float or str)."""
    return show_value(value) if isinstance(value, (tuple, list)) else value


def _decode(knob: str, value: Any) -> Any:
    if isinstance(KNOBS[knob], tuple) and isinstance(value, str):
        return tuple(int(part) for part in value.split(","))
    return value


def suggest(spec: SweepSpec, trial: optuna.Trial) -> dict[str, Any]:
    """The configuration (knob -> value) of an Optuna trial: a categorical choice for a list
    of values, an int or float (log-scaled if asked) for a range. For a trial with parameters
    already (enqueued, or resumed) these are its parameters."""
    combo: dict[str, Any] = {}
    for knob, values in spec.grid.items():
        if isinstance(values, KnobRange):
            if is_int(KNOBS[knob]):
                low, high = int(values.low), int(values.high)
                combo[knob] = trial.suggest_int(knob, low, high, log=values.log)
            else:
                low_f, high_f = float(values.low), float(values.high)
                combo[knob] = trial.suggest_float(knob, low_f, high_f, log=values.log)
        else:
            choices = [_encode(knob, v) for v in values]
            combo[knob] = _decode(knob, trial.suggest_categorical(knob, choices))
    return combo


def final_return_of(rows: list[dict[str, Any]], fraction: float = 0.1) -> float:
    """trpo.sweep.results.final_return of a metrics log's rows, without pandas: the mean of
    return_mean over the last `fraction` of the iterations (the last record of an iteration
    wins), NaN if none of them finished an episode."""
    by_iteration: dict[int, Any] = {}
    for row in rows:
        by_iteration[row["iteration"]] = row.get("return_mean")
    values = [by_iteration[i] for i in sorted(by_iteration)]
    if not values:
        return math.nan
    tail = [v for v in values[-max(1, math.ceil(fraction * len(values))) :] if _number(v)]
    return sum(tail) / len(tail) if tail else math.nan


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


class Study:
    """A sweep's Optuna study, as the driver uses it: create or load it, ask for the next
    trial, report, tell. The study is named after the sweep id."""

    def __init__(self, spec: SweepSpec, sweep_id: str, sweep_dir: str | Path) -> None:
        import optuna

        self.spec = spec
        self.name = sweep_id
        self.url = storage_url(spec, sweep_dir)
        storage = open_storage(self.url)
        try:
            offset = len(storage.get_all_trials(storage.get_study_id_from_name(sweep_id)))
        except KeyError:
            offset = 0
        self.study = optuna.create_study(
            storage=storage,
            study_name=sweep_id,
            direction="maximize",
            sampler=make_sampler(spec, offset),
            pruner=make_pruner(spec),
            load_if_exists=True,
        )
        if not self.study.user_attrs.get("trpo_sweep"):
            self.study.set_user_attr("trpo_sweep", sweep_id)
            self.study.set_user_attr(
                "objective", "final return of one run (one configuration, one seed)"
            )
        self.host = socket.gethostname()
        self.used_ids: set[str] = set()  # trial ids given out (attribute 'trial')
        self.configs = 0  # configurations chosen (attribute 'config': its first trial's number)
        self.waiting = 0  # seeds queued
        self.refresh()

    def refresh(self) -> None:
        """Count what the study holds, including what other drivers (other machines sharing
        the database) asked for since."""
        from optuna.trial import TrialState

        trials = self.study.get_trials(deepcopy=False)
        self.used_ids |= {str(t.user_attrs["trial"]) for t in trials if "trial" in t.user_attrs}
        self.configs = len({t.user_attrs["config"] for t in trials if "config" in t.user_attrs})
        self.waiting = sum(1 for t in trials if t.state == TrialState.WAITING)

    # --- the study's trials ------------------------------------------------------------------
    def trials(self) -> list[optuna.trial.FrozenTrial]:
        return self.study.get_trials(deepcopy=False)

    def unasked(self) -> int:
        """Runs of this sweep that no trial holds yet: queued seeds and configurations the
        sampler has still to choose."""
        self.refresh()
        return self.waiting + max(0, self.spec.n_configs - self.configs) * len(self.spec.seeds)

    def resume(self, frozen: optuna.trial.FrozenTrial) -> tuple[optuna.Trial, Trial]:
        """A RUNNING trial of an earlier launch, to continue."""
        import optuna

        trial = optuna.Trial(self.study, frozen._trial_id)
        return trial, self._to_trial(trial, frozen.user_attrs)

    def ask(self) -> tuple[optuna.Trial, Trial] | None:
        """The next trial to run: a queued seed of a configuration, else a new configuration
        from the sampler (its other seeds queued), else None (every configuration chosen).
        A proposal that is not a valid config (a cross-knob rule, with ranges) is told FAIL
        and the sampler asked again."""
        from optuna.trial import TrialState

        last = ""
        for _ in range(MAX_INVALID_DRAWS):
            self.refresh()
            if not self.waiting and self.configs >= self.spec.n_configs:
                return None
            trial = self.study.ask()
            fresh = "config" not in trial.user_attrs  # chosen by the sampler, not queued
            attrs = dict(trial.user_attrs)
            if fresh:  # its number names the configuration, unique in a shared database
                attrs = {"config": trial.number, "seed": self.spec.seeds[0]}
            try:
                out = self._to_trial(trial, attrs)
            except ConfigError as exc:  # only with ranges: lists were checked in the spec
                last = "; ".join(exc.problems)
                trial.set_user_attr("invalid", last)
                self.study.tell(trial, state=TrialState.FAIL)
                continue
            for key, value in {**attrs, "host": self.host}.items():
                if trial.user_attrs.get(key) != value:  # a queued seed has most of them
                    trial.set_user_attr(key, value)
            if fresh:
                for seed in self.spec.seeds[1:]:
                    self.study.enqueue_trial(
                        trial.params,
                        user_attrs={"config": attrs["config"], "seed": seed},
                        skip_if_exists=False,
                    )
            return trial, out
        raise SweepError(
            f"the {self.spec.search} search proposed {MAX_INVALID_DRAWS} configurations in a "
            f"row that are not valid, the last: {last}"
        )

    def _to_trial(self, trial: optuna.Trial, attrs: dict[str, Any]) -> Trial:
        """Our Trial of an Optuna trial: its configuration (suggested, or its parameters) with
        the seed of its attributes; a trial id of its own (recorded as the attribute 'trial')."""
        combo = suggest(self.spec, trial)
        seed = int(attrs.get("seed", self.spec.seeds[0]))
        if "trial" in attrs:  # resumed: it keeps its id
            out = make_trial(self.spec, combo, seed, number=trial.number)
            return Trial(str(attrs["trial"]), out.config, out.knobs, trial.number)
        repeat = 0
        while True:
            out = make_trial(self.spec, combo, seed, repeat, number=trial.number)
            if out.trial_id not in self.used_ids:
                break
            repeat += 1
        self.used_ids.add(out.trial_id)
        trial.set_user_attr("trial", out.trial_id)
        return out

    # --- reports and outcomes ----------------------------------------------------------------
    def report(self, trial: optuna.Trial, step: int, value: float) -> bool:
        """The run's mean return at iteration `step` (True once reported)."""
        trial.report(value, step)
        return True

    def should_prune(self, trial: optuna.Trial) -> bool:
        return self.spec.pruner != "none" and trial.should_prune()

    def note(self, trial: optuna.Trial, **attrs: Any) -> None:
        for key, value in attrs.items():
            trial.set_user_attr(key, value)

    def tell_finished(self, trial: optuna.Trial, value: float) -> None:
        from optuna.trial import TrialState

        if _number(value):
            self.study.tell(trial, value, skip_if_finished=True)
        else:
            trial.set_user_attr("error", "no episode ended in the final iterations")
            self.study.tell(trial, state=TrialState.FAIL, skip_if_finished=True)

    def tell_pruned(self, trial: optuna.Trial) -> None:
        from optuna.trial import TrialState

        self.study.tell(trial, state=TrialState.PRUNED, skip_if_finished=True)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.study._storage.engine.dispose()  # type: ignore[attr-defined]


def create_study(spec: SweepSpec, sweep_id: str, sweep_dir: str | Path) -> str:
    """Create the sweep's study (ConfigError if its storage cannot be opened, SweepError if a
    study of that name exists); return the storage URL."""
    import optuna

    url = storage_url(spec, sweep_dir)
    storage = open_storage(url)
    try:
        optuna.create_study(storage=storage, study_name=sweep_id, direction="maximize")
    except optuna.exceptions.DuplicatedStudyError as exc:
        raise SweepError(f"{shown_url(url)} already holds a study named {sweep_id}") from exc
    finally:
        with contextlib.suppress(Exception):
            storage.engine.dispose()
    return url


@contextlib.contextmanager
def read_study(url: str, name: str) -> Iterator[optuna.Study]:
    """A sweep's study, opened to read it (figures, analysis) and closed after the with block.
    ConfigError if its storage cannot be opened, SweepError if it holds no study of that name
    (a default study.db that does not exist is not created)."""
    import optuna

    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).is_file():
        raise SweepError(f"{shown_url(url)} does not exist: the sweep has no study yet")
    storage = open_storage(url)
    try:
        try:
            study = optuna.load_study(study_name=name, storage=storage)
        except KeyError as exc:
            raise SweepError(f"{shown_url(url)} holds no study named {name}") from exc
        yield study
    finally:
        with contextlib.suppress(Exception):
            storage.engine.dispose()
