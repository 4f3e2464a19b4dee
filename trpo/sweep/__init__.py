"""Hyperparameter sweeps: configurations times seeds, chosen by Optuna, run in parallel.

A sweep is defined by a `SweepSpec` (a base config, the swept knobs and their values or ranges,
the seeds, the search: grid, random or TPE, the number of configurations, a pruner, the study's
storage). Optuna chooses the configurations (its GridSampler, RandomSampler or TPESampler) and
keeps the study in a database: by default an SQLite file, study.db, in the sweep's folder, so
`optuna.load_study(study_name=<sweep id>, storage=...)` and optuna-dashboard open it (see
trpo.sweep.search, which also says how seeds map onto Optuna trials and how pruning reaches the
workers). Every trial (one configuration, one seed) is an ORDINARY run in the run store, tagged
`{"sweep": id, "trial": id, "knobs": {...}, "optuna_trial": number}`, so everything that works
on runs works on trials. The sweep itself lives beside the runs, in
<runs_dir>/sweeps/<sweep_id>/ (see trpo.sweep.storage).

Backends: "local" is a process pool on this machine (one torch thread per worker, see
trpo.sweep.local); "ray" runs each trial as a Ray task on a local or remote Ray cluster and
brings the run folder back into this machine's run store (see trpo.sweep.ray_backend). Both can
be stopped (`stop_event`, `stop_sweep`) and resumed (`resume_sweep_id`: finished and pruned
trials are skipped, the others continue from their checkpoints, and the search goes on where it
was). `run_sweep` never touches signal handlers, so it can run in a background thread (e.g. of
a Streamlit server); `start_sweep` does exactly that. Pool workers are spawned without
re-running the caller's main script (a Streamlit page, or a script without a main guard), so
anything they need must be importable: pass `worker_init` as a function of a module.

Results: `sweep_trials` (one row per trial, for live tables; through incremental log readers
if given), `sweep_results` (one row per configuration), `best_so_far` and `state_counts`, see
trpo.sweep.results; `estimate_sweep` (a sweep's duration before launch, trpo.sweep.estimate);
all read the run store only. `read_study` opens a sweep's study to read it.

The modules, each importing (at run time) only those listed before it: spec (what to sweep),
search (everything Optuna), backend (the backend interface and the backends by name), storage
(the sweeps folder), trial (one trial in a worker), driver (running a sweep), launch (a sweep in
a background thread), estimate (how long a sweep will take), results; local and ray_backend
(the backends) are imported only when a sweep runs on them. Importing this package starts
nothing, sets nothing and imports neither Optuna nor Ray.
"""

from trpo.sweep.backend import BACKENDS, Backend, WorkerInit, get_backend
from trpo.sweep.driver import (
    DONE_STATES,
    MAX_WORKERS,
    TRIAL_STATES,
    Driver,
    Job,
    OnProgress,
    SweepResult,
    TrialEvent,
    TrialOutcome,
    run_sweep,
)
from trpo.sweep.estimate import DEFAULT_STEPS_PER_S, SweepEstimate, estimate_sweep
from trpo.sweep.launch import SweepHandle, start_sweep
from trpo.sweep.results import (
    FINAL_FRACTION,
    best_so_far,
    final_return,
    format_results,
    format_table,
    state_counts,
    sweep_results,
    sweep_trials,
)
from trpo.sweep.search import STUDY_FILE, Study, read_study, storage_url
from trpo.sweep.spec import (
    KNOBS,
    MAX_TRIALS,
    PRUNERS,
    SEARCHES,
    GridValues,
    KnobRange,
    SweepError,
    SweepSpec,
    Trial,
    grid_configurations,
    make_trial,
    trials,
)
from trpo.sweep.storage import (
    DRIVER_FILE,
    SPEC_FILE,
    STOP_FILE,
    SWEEPS_DIR,
    SweepInfo,
    create_sweep,
    list_sweeps,
    load_sweep,
    stop_sweep,
    sweep_path,
    sweep_runs,
    sweep_state,
    sweeps_root,
    unreadable_sweeps,
)
from trpo.sweep.trial import STOP_POLL_S, train_trial

__all__ = [
    "BACKENDS",
    "DEFAULT_STEPS_PER_S",
    "DONE_STATES",
    "DRIVER_FILE",
    "FINAL_FRACTION",
    "KNOBS",
    "MAX_TRIALS",
    "MAX_WORKERS",
    "PRUNERS",
    "SEARCHES",
    "SPEC_FILE",
    "STOP_FILE",
    "STOP_POLL_S",
    "STUDY_FILE",
    "SWEEPS_DIR",
    "TRIAL_STATES",
    "Backend",
    "Driver",
    "GridValues",
    "Job",
    "KnobRange",
    "OnProgress",
    "Study",
    "SweepError",
    "SweepEstimate",
    "SweepHandle",
    "SweepInfo",
    "SweepResult",
    "SweepSpec",
    "Trial",
    "TrialEvent",
    "TrialOutcome",
    "WorkerInit",
    "best_so_far",
    "create_sweep",
    "estimate_sweep",
    "final_return",
    "format_results",
    "format_table",
    "get_backend",
    "grid_configurations",
    "list_sweeps",
    "load_sweep",
    "make_trial",
    "read_study",
    "run_sweep",
    "start_sweep",
    "state_counts",
    "stop_sweep",
    "storage_url",
    "sweep_path",
    "sweep_results",
    "sweep_runs",
    "sweep_state",
    "sweep_trials",
    "sweeps_root",
    "train_trial",
    "trials",
    "unreadable_sweeps",
]
