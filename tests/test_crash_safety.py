"""SIGKILL the CLI trainer at 20 moments (during rollouts and updates at random times, and
during checkpoint writes); after each kill the run folder loads, every finished iteration is
intact, the checkpoint loads, and --resume continues with no iteration missing or repeated."""

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from trpo.store import load_metrics, open_run

pytestmark = pytest.mark.slow  # 20 CLI trainer processes killed and resumed

ROOT = Path(__file__).resolve().parent.parent
KILLS = 20


def start(args, cwd):
    return subprocess.Popen(
        [sys.executable, "-m", "trpo", "train", *args, "--quiet"],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


def wait_for_tmp_file(folder: Path, deadline: float) -> bool:
    while time.monotonic() < deadline:
        if any(name.endswith(".tmp") for name in os.listdir(folder)):
            return True
        time.sleep(0.0005)
    return False


def test_twenty_kills_lose_nothing_but_the_iteration_in_flight(tmp_path):
    rng = random.Random(1234)
    base = [
        "--env",
        "CartPole-v1",
        "--total-steps",
        "10000000",
        "--steps-per-iteration",
        "256",
        "--hidden-sizes",
        "384,384",
        "--vf-epochs",
        "2",
        "--cg-iters",
        "5",
        "--runs-dir",
        "runs",
        "--seed",
        "7",
    ]
    run_dir = None
    during_write = 0
    history = []
    for kill in range(KILLS):
        proc = start(base if run_dir is None else ["--resume", str(run_dir)], tmp_path)
        line = proc.stdout.readline()  # "run folder: ..." once the folder exists
        assert line.startswith("run folder: "), line
        run_dir = tmp_path / line.split(": ", 1)[1].strip()
        before = len(load_metrics(run_dir))
        if kill % 3 == 2:  # aim at a checkpoint write: kill as soon as its temp file appears
            # let at least one iteration of this process finish first
            deadline = time.monotonic() + 60
            while len(load_metrics(run_dir)) <= before and time.monotonic() < deadline:
                time.sleep(0.002)
            hit = wait_for_tmp_file(run_dir, time.monotonic() + 30)
            during_write += hit
        else:
            time.sleep(rng.uniform(0.05, 1.5))
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)

        frame = load_metrics(run_dir)
        iterations = list(frame["iteration"])
        assert iterations == list(range(1, len(iterations) + 1)), iterations
        assert frame["value_loss"].notna().all()
        run = open_run(run_dir)
        assert run.config().env_id == "CartPole-v1"
        if run.has_checkpoint():
            saved = run.load_checkpoint().meta["iteration"]
            # the log is at most one iteration ahead of the checkpoint
            assert saved in (len(iterations), len(iterations) - 1)
        history.append(len(iterations))

    # a last resume: continues from the checkpoint's iteration + 1
    saved = open_run(run_dir).load_checkpoint().meta["iteration"]
    proc = start(["--resume", str(run_dir), "--total-steps", str(256 * (saved + 2))], tmp_path)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, out
    iterations = list(load_metrics(run_dir)["iteration"])
    assert iterations == list(range(1, saved + 3))
    assert open_run(run_dir).state() == "finished"
    assert not [p for p in os.listdir(run_dir) if p.endswith(".tmp")]
    assert during_write >= KILLS // 3 - 1, during_write
    assert history[-1] > 3  # training made progress across the kills
