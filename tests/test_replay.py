"""Replays: MP4 bytes from a run's checkpoint, checked against evaluate(), MuJoCo frames that are
not black (rendered from a worker thread, as Streamlit's script thread does), the errors, and the
Replay page through AppTest."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import threading
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
from safetensors import safe_open
from streamlit.testing.v1 import AppTest

from tests.conftest import tiny_config
from trpo.envs import EnvError, make_render_env
from trpo.evaluate import evaluate
from trpo.replay import (
    MAX_WIDTH,
    NoCheckpointError,
    Replay,
    _even_size,
    checkpoint_summary,
    render_episode,
)
from trpo.session import TrainingSession
from trpo.store import RunStore, RunStoreError

APP = str(Path(__file__).resolve().parents[1] / "pages" / "navigation.py")


def train(env_id: str, root: Path) -> Path:
    session = TrainingSession.new(tiny_config(env_id), RunStore(root))
    assert session.run(None) == "finished"
    return session.run_folder.path


@pytest.fixture
def cartpole_run(good_run: Path) -> Path:
    """The session's finished tiny CartPole run (replays only read it)."""
    return good_run


@pytest.fixture(scope="module")
def cheetah_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train("HalfCheetah-v5", tmp_path_factory.mktemp("cheetah-runs"))


pytestmark = pytest.mark.usefixtures("fresh_streamlit")


def decode(video: bytes) -> np.ndarray:
    return iio.imread(video, index=None, extension=".mp4")


def mp4_box_type(video: bytes) -> bytes:
    return video[4:8]  # a 4-byte size, then the first box's type


# --- the library --------------------------------------------------------------------------------


@pytest.mark.slow  # renders and encodes a whole CartPole episode: about 3 s
def test_cartpole_replay_is_an_mp4_whose_return_matches_evaluate(cartpole_run: Path) -> None:
    replay = render_episode(cartpole_run, seed=7)
    assert isinstance(replay, Replay)
    assert mp4_box_type(replay.video) == b"ftyp"
    assert replay.env_id == "CartPole-v1"
    assert replay.iteration == 2  # 1024 steps of 512
    assert replay.seed == 7
    assert replay.ended in ("terminated", "truncated")
    # The reset frame, then one frame per step.
    assert replay.frames == replay.length + 1
    frames = decode(replay.video)
    assert frames.shape == (replay.frames, replay.height, replay.width, 3)
    # CartPole renders 600x400: scaled to 480 wide, aspect kept, even sizes.
    assert (replay.width, replay.height) == (MAX_WIDTH, 320)
    # Independent check: evaluate() runs its own env without rendering.
    reference = evaluate(cartpole_run, episodes=1, seed=7)
    assert replay.episode_return == reference.returns[0]
    assert replay.length == reference.lengths[0]


@pytest.mark.slow  # renders and encodes MuJoCo/long videos
def test_same_seed_same_episode_and_the_step_cap(cartpole_run: Path) -> None:
    first = render_episode(cartpole_run, seed=3)
    again = render_episode(cartpole_run, seed=3)
    assert (again.episode_return, again.length) == (first.episode_return, first.length)
    capped = render_episode(cartpole_run, seed=3, max_steps=5)
    assert (capped.length, capped.frames, capped.ended) == (5, 6, "max_steps")
    assert capped.episode_return == 5.0  # CartPole pays 1 a step
    assert len(decode(capped.video)) == 6


@pytest.mark.slow  # renders and encodes MuJoCo/long videos
def test_halfcheetah_frames_are_not_black_when_rendered_from_a_worker_thread(
    cheetah_run: Path,
) -> None:
    result: dict[str, object] = {}

    def work() -> None:
        try:
            result["replay"] = render_episode(cheetah_run, seed=0, max_steps=12)
        except BaseException as exc:  # reported below
            result["error"] = exc

    worker = threading.Thread(target=work)
    worker.start()
    worker.join(timeout=120)
    assert "error" not in result, result.get("error")
    replay = result["replay"]
    assert isinstance(replay, Replay)
    assert os.environ["MUJOCO_GL"] in ("osmesa", "egl")
    assert mp4_box_type(replay.video) == b"ftyp"
    assert (replay.length, replay.frames, replay.ended) == (12, 13, "max_steps")
    frames = decode(replay.video)
    assert frames.shape == (13, 480, 480, 3)
    # Sky, checkerboard floor and robot: about 120 here; a broken GL context gives 0.
    for frame in (frames[0], frames[-1]):
        assert frame.mean() > 60
        assert frame.std() > 20  # not a uniform colour either
    reference = evaluate(cheetah_run, episodes=1, seed=0)
    assert reference.lengths[0] == 1000  # HalfCheetah only truncates, so the cap ended ours


@pytest.mark.slow  # renders and encodes MuJoCo/long videos
def test_mujoco_imported_before_the_backend_is_chosen_still_renders(cheetah_run: Path) -> None:
    # In the dashboard a training thread may import mujoco (MUJOCO_GL unset) before the Replay
    # page imports trpo.replay; Gymnasium reads MUJOCO_GL only when it makes the GL context.
    script = (
        "import os, sys, mujoco\n"
        "assert 'MUJOCO_GL' not in os.environ\n"
        "from trpo.replay import render_episode\n"
        "import imageio.v3 as iio\n"
        "r = render_episode(sys.argv[1], max_steps=2)\n"
        "print(os.environ['MUJOCO_GL'], iio.imread(r.video, index=0, extension='.mp4').mean())\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("MUJOCO_GL", "PYOPENGL_PLATFORM")}
    done = subprocess.run(
        [sys.executable, "-c", script, str(cheetah_run)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    backend, mean = done.stdout.split()
    assert backend in ("osmesa", "egl")
    assert float(mean) > 60


def test_walkers_follow_the_track_camera_and_others_keep_theirs() -> None:
    env, info = make_render_env("HalfCheetah-v5")
    try:
        assert env.render_mode == "rgb_array"
        assert env.unwrapped.camera_name == "track"
        assert not info.discrete
    finally:
        env.close()
    env, _ = make_render_env("InvertedPendulum-v5")
    try:
        assert env.unwrapped.camera_name is None
    finally:
        env.close()
    env, info = make_render_env("CartPole-v1")
    try:
        assert env.render_mode == "rgb_array" and info.discrete
    finally:
        env.close()
    with pytest.raises(EnvError, match="names a module"):
        make_render_env("some_module:Thing-v0")


def test_a_run_without_a_checkpoint_raises_a_clear_error(tmp_path: Path) -> None:
    run = RunStore(tmp_path).create(tiny_config())
    assert checkpoint_summary(run.path) is None
    with pytest.raises(NoCheckpointError, match="has no checkpoint yet"):
        render_episode(run.path)
    with pytest.raises(RunStoreError, match="not a run folder"):
        render_episode(tmp_path / "missing")


def test_checkpoint_summary(cartpole_run: Path) -> None:
    summary = checkpoint_summary(cartpole_run)
    assert summary is not None
    assert (summary.iteration, summary.env_steps) == (2, 1024)
    # the version is the digest of the checkpoint's metadata (iteration, env steps, RNG states)
    with safe_open(cartpole_run / "checkpoint.safetensors", framework="pt") as handle:
        text = handle.metadata()["trpo"]
    assert summary.version == hashlib.sha256(text.encode()).hexdigest()


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [({"seed": -1}, "seed"), ({"max_steps": 0}, "max_steps"), ({"fps": 0}, "fps")],
)
def test_bad_arguments_are_refused(cartpole_run: Path, kwargs: dict, name: str) -> None:
    with pytest.raises(ValueError, match=name):
        render_episode(cartpole_run, **kwargs)


def test_output_sizes_are_even_and_capped() -> None:
    assert _even_size(600, 400, 480) == (480, 320)
    assert _even_size(480, 480, 480) == (480, 480)
    assert _even_size(301, 201, 480) == (300, 200)
    width, height = _even_size(1001, 333, 480)
    assert width == 480 and height % 2 == 0 and abs(height - 333 * 480 / 1001) <= 2


# --- the page -----------------------------------------------------------------------------------


def replay_page(runs_dir: Path, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    monkeypatch.setenv("TRPO_RUNS_DIR", str(runs_dir))
    at = AppTest.from_file(APP, default_timeout=60)
    at.switch_page("replay.py")
    at.run()
    assert not at.exception, at.exception
    return at


def test_page_without_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    at = replay_page(tmp_path / "runs", monkeypatch)
    assert at.title[0].value == "Replay"
    assert any("No runs yet" in i.value for i in at.info)
    assert not at.button


def test_page_with_a_run_without_checkpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    RunStore(tmp_path).create(tiny_config())
    at = replay_page(tmp_path, monkeypatch)
    assert any("no checkpoint yet" in i.value for i in at.info)
    assert not at.button
    assert not at.get("video")


@pytest.mark.slow  # renders and encodes a video through the page
def test_page_plays_an_episode(cartpole_run: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    at = replay_page(cartpole_run.parent, monkeypatch)
    assert any("iteration 2 " in m.value for m in at.markdown)
    assert "only its latest checkpoint" in " ".join(m.value for m in at.markdown)
    assert not at.get("video")
    at.number_input(key="replay_seed").set_value(7)
    at.button(key="replay_play").click()
    at.run()
    assert not at.exception, at.exception
    videos = at.get("video")
    assert len(videos) == 1
    assert videos[0].proto.type == videos[0].proto.Type.NATIVE
    metrics = {m.label: m.value for m in at.metric}
    reference = evaluate(cartpole_run, episodes=1, seed=7)
    assert metrics["Episode return"] == f"{reference.returns[0]:,.1f}"
    assert metrics["Length"] == f"{reference.lengths[0]:,} steps"
    assert metrics["Checkpoint iteration"] == "2"
    # A rerun (any widget change elsewhere) keeps showing the episode; a new seed clears it.
    at.run()
    assert len(at.get("video")) == 1
    at.number_input(key="replay_seed").set_value(8)
    at.run()
    assert not at.get("video")
