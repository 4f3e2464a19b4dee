"""Replay: one episode of a run's checkpointed policy, rendered to an H.264 MP4 in memory.

The policy acts deterministically (argmax / mean, clipped), as in `trpo.evaluate`. The env is
created, rendered and closed inside `render_episode`, in the calling thread: a MuJoCo env's
OpenGL context belongs to the thread that created it (another thread gets black frames), so
callers cache the video bytes, never the env.

Headless rendering: pygame (classic control, Box2D) gets SDL_VIDEODRIVER=dummy; MuJoCo gets
MUJOCO_GL=osmesa when Mesa's off-screen library (Debian's libosmesa6) is present, else egl.
Gymnasium reads MUJOCO_GL when it creates the render context, so setting it here works even if
mujoco was imported earlier; a value the user has set is never overridden. PyOpenGL binds to one
platform per process, so the backend cannot change once the first MuJoCo frame is rendered.
"""

from __future__ import annotations

import ctypes.util
import functools
import os
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from trpo.envs import EnvError, make_render_env
from trpo.evaluate import load_policy
from trpo.store import CHECKPOINT, RunStoreError, open_run

MAX_WIDTH = 480  # frames wider than this are scaled down (keeps videos small and fast)
DEFAULT_FPS = 30

# One render at a time per process: MuJoCo renders in software on the CPU, and a GL driver's
# per-thread state is not worth betting on when two browser tabs click Play at once.
_RENDER_LOCK = threading.Lock()


class ReplayError(RuntimeError):
    """A replay that cannot be made, with the reason in words."""


class NoCheckpointError(ReplayError):
    """The run has not saved a checkpoint yet."""


@dataclass(frozen=True)
class Replay:
    """A rendered episode. The video has `frames == length + 1` frames: the reset state, then
    one frame after each step."""

    video: bytes  # H.264 (yuv420p) in an MP4 container, moov atom first (+faststart)
    env_id: str
    iteration: int  # training iteration of the checkpoint that acted
    seed: int  # env.reset(seed=seed)
    episode_return: float  # sum of raw (unnormalised) rewards
    length: int  # env steps taken
    frames: int
    ended: str  # "terminated", "truncated" (the env's time limit) or "max_steps"
    width: int  # of the video (frames are scaled down to at most max_width)
    height: int
    fps: int
    render_seconds: float  # stepping, rendering and encoding

    @property
    def ms_per_frame(self) -> float:
        return 1000.0 * self.render_seconds / max(self.frames, 1)


@dataclass(frozen=True)
class CheckpointSummary:
    """What the latest (and only) checkpoint of a run holds, without loading the policy."""

    iteration: int
    env_steps: int
    version: str  # the checkpoint's SHA-256: differs for any other checkpoint


@functools.cache
def _gl_backend_available() -> str | None:
    if ctypes.util.find_library("OSMesa"):
        return "osmesa"
    if ctypes.util.find_library("EGL"):
        return "egl"
    return None


def configure_headless_rendering() -> str | None:
    """Set the rendering environment variables that are not set yet; return MUJOCO_GL.

    osmesa is preferred: it needs only libosmesa6 (which CI installs) and was as fast as EGL
    here; EGL also needs libegl1, libegl-mesa0 and libgl1-mesa-dri. If PyOpenGL is already
    bound to a platform (PYOPENGL_PLATFORM), MuJoCo must use the same one.
    """
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
    if "MUJOCO_GL" not in os.environ:
        platform = os.environ.get("PYOPENGL_PLATFORM", "").strip().lower()
        backend = platform if platform in ("osmesa", "egl") else _gl_backend_available()
        if backend is not None:
            os.environ["MUJOCO_GL"] = backend
    return os.environ.get("MUJOCO_GL")


def checkpoint_summary(run_dir: str | os.PathLike[str]) -> CheckpointSummary | None:
    """The run's checkpoint (iteration, env steps, version), or None if it has none yet.

    The checkpoint is read whole (a few hundred KB at most): its content, not its mtime or
    size, tells a new checkpoint from the last one, so a cache keyed on `version` is never
    stale.
    """
    run = open_run(run_dir)
    if not run.has_checkpoint():
        return None
    checkpoint = run.load_checkpoint()
    meta = checkpoint.meta
    try:
        iteration, env_steps = int(meta.get("iteration", 0)), int(meta.get("env_steps", 0))
    except (TypeError, ValueError) as exc:
        raise RunStoreError(
            f"{run.path / CHECKPOINT} is not a valid checkpoint: bad iteration or env_steps"
        ) from exc
    return CheckpointSummary(iteration, env_steps, checkpoint.digest)


def _even_size(width: int, height: int, max_width: int) -> tuple[int, int]:
    """The output size: at most max_width wide, aspect kept, both even (yuv420p needs it)."""
    scale = min(1.0, max_width / width)
    out_w = max(2, int(width * scale) // 2 * 2)
    out_h = max(2, round(height * out_w / width / 2) * 2)
    return out_w, out_h


def _check_frame(frame: Any, env_id: str) -> np.ndarray:
    array = np.asarray(frame) if frame is not None else None
    if array is None or array.ndim != 3 or array.shape[2] != 3 or array.size == 0:
        shape = None if array is None else array.shape
        raise ReplayError(f"{env_id} did not return an RGB frame (got shape {shape})")
    return np.ascontiguousarray(array, dtype=np.uint8)


def _gl_hint(env_id: str, exc: BaseException) -> ReplayError:
    backend = os.environ.get("MUJOCO_GL")
    return ReplayError(
        f"{env_id} cannot render on this machine ({type(exc).__name__}: {exc}). MuJoCo renders "
        f"off-screen through MUJOCO_GL (now {backend!r}): 'osmesa' needs the Debian package "
        "libosmesa6; 'egl' needs libegl1, libegl-mesa0 and libgl1-mesa-dri. Set MUJOCO_GL "
        "before starting the dashboard."
    )


def render_episode(
    run_dir: str | os.PathLike[str],
    seed: int = 0,
    max_steps: int = 1000,
    fps: int = DEFAULT_FPS,
    max_width: int = MAX_WIDTH,
) -> Replay:
    """Play one episode with the run's latest checkpointed policy and encode it as an MP4.

    The episode ends when the env terminates or truncates (its time limit), or after max_steps
    steps. Raises NoCheckpointError if the run has no checkpoint yet, ReplayError if the env
    cannot be made or cannot render, RunStoreError for an unreadable run or checkpoint.
    """
    for name, value, low in (("seed", seed, 0), ("max_steps", max_steps, 1), ("fps", fps, 1)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low:
            raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    if isinstance(max_width, bool) or not isinstance(max_width, int) or max_width < 16:
        raise ValueError(f"max_width must be an integer >= 16, got {max_width!r}")
    run = open_run(run_dir)
    if not run.has_checkpoint():
        raise NoCheckpointError(
            f"run {run.id} has no checkpoint yet: a checkpoint is saved every "
            "checkpoint_every iterations and when training stops"
        )
    loaded = load_policy(run.path)
    configure_headless_rendering()
    with _RENDER_LOCK:
        return _render(loaded, int(seed), int(max_steps), int(fps), max_width)


def _render(loaded: Any, seed: int, max_steps: int, fps: int, max_width: int) -> Replay:
    import imageio.v2 as imageio

    env_id = loaded.config.env_id
    started = time.perf_counter()
    try:
        env, _ = make_render_env(env_id)
    except EnvError as exc:
        raise ReplayError(f"{env_id} cannot be replayed: {exc}") from exc
    try:
        actor = loaded.policy.numpy_actor()
        obs, _ = env.reset(seed=seed)
        try:
            first = _check_frame(env.render(), env_id)
        except ReplayError:
            raise
        except Exception as exc:  # the GL context is made on the first render
            raise _gl_hint(env_id, exc) from exc
        height, width = first.shape[:2]
        out_w, out_h = _even_size(width, height, max_width)
        total, length, ended = 0.0, 0, "max_steps"
        with tempfile.TemporaryDirectory(prefix="trpo-replay-") as tmp:
            path = Path(tmp) / "episode.mp4"
            writer = imageio.get_writer(
                path,
                format="FFMPEG",
                mode="I",
                fps=fps,
                codec="libx264",
                pixelformat="yuv420p",
                macro_block_size=1,
                ffmpeg_log_level="error",
                output_params=[
                    "-vf",
                    f"scale={out_w}:{out_h}:flags=area",
                    "-preset",
                    "veryfast",
                    "-movflags",
                    "+faststart",
                ],
            )
            try:
                writer.append_data(first)
                frames = 1
                while length < max_steps:
                    obs, reward, terminated, truncated, _ = env.step(loaded.act(obs, actor))
                    total += float(reward)
                    length += 1
                    frame = _check_frame(env.render(), env_id)
                    if frame.shape != first.shape:
                        raise ReplayError(
                            f"{env_id} changed its frame size from {first.shape} to {frame.shape}"
                        )
                    writer.append_data(frame)
                    frames += 1
                    if terminated or truncated:
                        ended = "terminated" if terminated else "truncated"
                        break
            finally:
                writer.close()
            video = path.read_bytes()
    finally:
        env.close()
    return Replay(
        video=video,
        env_id=env_id,
        iteration=loaded.iteration,
        seed=seed,
        episode_return=total,
        length=length,
        frames=frames,
        ended=ended,
        width=out_w,
        height=out_h,
        fps=fps,
        render_seconds=time.perf_counter() - started,
    )
