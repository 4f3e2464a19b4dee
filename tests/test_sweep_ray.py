"""Sweeps through Ray: a local Ray instance started by the backend (ray.init(num_cpus=2)) runs
the trials, and their run folders come back into the local run store."""

import glob
import tempfile
import threading
import time

import pytest

ray = pytest.importorskip("ray")

pytestmark = pytest.mark.slow  # starts a local Ray instance

from tests.sweep_helpers import register_envs  # noqa: E402
from trpo.config import TRPOConfig  # noqa: E402
from trpo.store import RunStore, load_metrics  # noqa: E402
from trpo.sweep import (  # noqa: E402
    SweepSpec,
    create_sweep,
    ray_backend,
    run_sweep,
    start_sweep,
    sweep_results,
    sweep_state,
    sweep_trials,
    trials,
)

TINY = dict(total_steps=2048, steps_per_iteration=512, vf_epochs=1, cg_iters=3)
TRIAL_DIRS = f"{tempfile.gettempdir()}/trpo-trial-*"


@pytest.fixture(autouse=True)
def no_leftover_ray():
    before = set(glob.glob("/tmp/trpo-ray-*"))
    assert not ray.is_initialized()
    yield
    assert not ray.is_initialized()  # the backend shut down the instance it started
    assert set(glob.glob("/tmp/trpo-ray-*")) <= before  # and removed its temp dir
    # trial folders of dead workers are removed by the next task (here: by the resume)


def test_tiny_ray_sweep_brings_the_runs_home(tmp_path):
    """Two sweeps launched in background threads (as a dashboard would) share one local Ray
    instance, started on demand and shut down after the last of them."""
    runs_dir = tmp_path / "runs"
    spec = SweepSpec(TRPOConfig(**TINY), {"delta": [0.005, 0.02]}, seeds=[0, 1])
    other = SweepSpec(TRPOConfig(**TINY), seeds=[7])
    handle = start_sweep(spec, runs_dir, workers=2, backend="ray")
    second = start_sweep(other, runs_dir, workers=2, backend="ray")
    handle.thread.join(120)
    second.thread.join(120)
    assert handle.error is None and second.error is None
    result = handle.result
    assert result.counts == {"finished": 4} and result.workers == 2
    assert second.result.counts == {"finished": 1}

    runs = [r for r in RunStore(runs_dir).runs() if r.meta()["tags"]["sweep"] == result.sweep_id]
    assert len(runs) == 4 and len(RunStore(runs_dir).runs()) == 5
    by_trial = {t.trial_id: t for t in trials(spec)}
    for run in runs:
        tags = run.meta()["tags"]
        assert tags["knobs"] == {"delta": by_trial[tags["trial"]].config.delta}
        assert run.config() == by_trial[tags["trial"]].config
        assert run.status()["state"] == "finished"
        assert run.has_checkpoint()
        assert list(load_metrics(run.path)["iteration"]) == [1, 2, 3, 4]
    table = sweep_results(runs_dir, result.sweep_id)
    assert len(table) == 2 and list(table["n_seeds"]) == [2, 2]
    assert table["final_return_mean"].notna().all()
    assert sweep_state(runs_dir, result.sweep_id) == "finished"


def test_ray_failures_stop_resume(tmp_path):
    """A trial that raises and one whose worker dies are failed while the others finish; a
    stopped Ray sweep resumes from the checkpoints that came home."""
    trial_dirs_before = set(glob.glob(TRIAL_DIRS))
    runs_dir = tmp_path / "runs"
    # six iterations; the poor trial takes 5 s each, so it is still going when the others have
    # ended, in whatever order the grid sampler hands the configurations out
    spec = SweepSpec(
        TRPOConfig(**{**TINY, "total_steps": 3072}),
        {"env_id": ["CartPole-v1", "SweepRaise-v0", "SweepDie-v0", "SweepPoor-v0"]},
        seeds=[0],
    )
    register_envs()  # here too: the driver checks the env ids before anything starts
    sweep_id = create_sweep(spec, runs_dir, backend="ray")
    stop = threading.Event()

    def slow_trial_going():
        table = sweep_trials(runs_dir, sweep_id)
        done = table[table["env_id"] != "SweepPoor-v0"]["status"].isin(["finished", "failed"])
        slow = table[table["env_id"] == "SweepPoor-v0"].iloc[0]
        return bool(done.all()) and slow["iterations"] >= 2  # live records from the channel

    kwargs = dict(workers=2, backend="ray", stop_event=stop, resume_sweep_id=sweep_id,
                  worker_init=register_envs)  # fmt: skip
    outcome = {}
    thread = threading.Thread(
        target=lambda: outcome.update(result=run_sweep(None, runs_dir, **kwargs))
    )
    thread.start()
    deadline = time.monotonic() + 240  # generous: a loaded 2-core machine is slow
    while time.monotonic() < deadline and not slow_trial_going():
        time.sleep(0.2)
    assert slow_trial_going(), sweep_trials(runs_dir, sweep_id)[["env_id", "status"]]
    stop.set()
    thread.join(60)
    assert outcome["result"].stopped

    table = sweep_trials(runs_dir, sweep_id).set_index("env_id")
    assert table.loc["CartPole-v1", "status"] == "finished"
    assert table.loc["SweepRaise-v0", "status"] == "failed"
    assert "RuntimeError: test env fault" in table.loc["SweepRaise-v0", "error"]
    assert table.loc["SweepDie-v0", "status"] == "failed"
    assert "the Ray task failed" in table.loc["SweepDie-v0", "error"]
    assert table.loc["SweepPoor-v0", "status"] == "stopped"
    stopped_at = int(table.loc["SweepPoor-v0", "iterations"])
    assert 2 <= stopped_at < 6

    result = run_sweep(None, runs_dir, workers=2, backend="ray", resume_sweep_id=sweep_id,
                       worker_init=register_envs)  # fmt: skip
    assert result.outcomes[table.loc["CartPole-v1", "trial"]].skipped
    table = sweep_trials(runs_dir, sweep_id).set_index("env_id")
    assert table.loc["SweepPoor-v0", "status"] == "finished"
    frame = load_metrics(table.loc["SweepPoor-v0", "run_dir"])
    assert list(frame["iteration"]) == list(range(1, 7))
    assert len(RunStore(runs_dir).runs()) == 4
    # the failed trials were retried on resume and failed again, the same way
    assert table.loc["SweepRaise-v0", "status"] == "failed"
    # a dead worker leaves its temporary trial folder; the next task on the node removes it
    ray_backend._remove_stale_trial_dirs()
    assert set(glob.glob(TRIAL_DIRS)) <= trial_dirs_before


def test_a_two_node_cluster_runs_trials_on_both_and_survives_losing_a_node(tmp_path):
    """A head and a second node on this machine (ray.cluster_utils.Cluster), one CPU each: the
    two slow trials start one per node, each tagged with its node; the second node is then
    removed mid-trial. Only its trial fails; the sweep finishes the rest on the head."""
    from ray.cluster_utils import Cluster

    register_envs()
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    try:
        # This process joins the cluster before the second node exists, so that its driver is
        # attached to the head (a driver's own node cannot be removed); the sweep then uses the
        # application's Ray as it is and leaves it connected.
        cluster.connect()
        second = cluster.add_node(num_cpus=1)
        cluster.wait_for_nodes()
        runs_dir = tmp_path / "runs"
        base = TRPOConfig(**{**TINY, "env_id": "SweepSlow-v0", "total_steps": 6144})
        spec = SweepSpec(base, {"delta": [0.005, 0.01, 0.02]}, seeds=[0])
        sweep_id = create_sweep(spec, runs_dir, backend="ray")
        outcome = {}
        thread = threading.Thread(
            target=lambda: outcome.update(
                result=run_sweep(None, runs_dir, workers=2, backend="ray", resume_sweep_id=sweep_id,
                                 ray_address=cluster.address, worker_init=register_envs)
            )
        )  # fmt: skip
        thread.start()

        def nodes_of_running_trials():
            runs = RunStore(runs_dir).runs()
            return {
                r.id: r.meta().get("tags", {})["ray_node_id"]
                for r in runs  # a folder being created has no meta.json yet
                if "ray_node_id" in r.meta().get("tags", {}) and len(load_metrics(r.path)) >= 1
            }

        deadline = time.monotonic() + 240  # a loaded 2-core machine starts Ray nodes slowly
        while time.monotonic() < deadline and len(set(nodes_of_running_trials().values())) < 2:
            time.sleep(0.2)
        started = nodes_of_running_trials()
        assert set(started.values()) == {cluster.head_node.node_id, second.node_id}, started
        lost = next(run_id for run_id, node in started.items() if node == second.node_id)
        cluster.remove_node(second)
        thread.join(600)  # Ray notices a lost node after its health checks (tens of seconds)
        assert not thread.is_alive()
        result = outcome["result"]
        assert result.counts == {"finished": 2, "failed": 1}, result.counts
        runs = {r.id: r for r in RunStore(runs_dir).runs()}
        assert runs[lost].status()["state"] == "failed"
        assert "the Ray task failed" in runs[lost].status()["error"]
        for run_id, run in runs.items():
            if run_id != lost:
                assert run.status()["state"] == "finished"
                assert list(load_metrics(run.path)["iteration"]) == list(range(1, 13))
                assert run.meta()["tags"]["ray_node_id"] == cluster.head_node.node_id
        assert ray.is_initialized()  # not the sweep's to shut down
    finally:
        ray.shutdown()
        cluster.shutdown()
