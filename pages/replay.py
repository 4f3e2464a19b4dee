"""Replay: watch one episode of a run's latest checkpointed policy, acting deterministically.

The episode is rendered off-screen in this script's thread by `trpo.replay.render_episode`
(env created, rendered and closed there); only the resulting MP4 bytes are cached, keyed by the
run folder, the checkpoint's content digest (never its mtime: two checkpoints saved within one
timestamp tick must not share a video), the seed and the step cap.
"""

from __future__ import annotations

import streamlit as st

from pages.common import LIBRARY_ERRORS, error_text, pick_run
from trpo.replay import (
    NoCheckpointError,
    Replay,
    ReplayError,
    checkpoint_summary,
    render_episode,
)
from trpo.store import RunStoreError

MAX_STEPS_CHOICES = (100, 250, 500, 1000)
RESULT_KEY = "replay_result"


@st.cache_data(show_spinner=False, max_entries=24)
def _replay(path: str, checkpoint_version: str, seed: int, max_steps: int) -> Replay:
    """The video bytes and episode numbers (never the env: its GL context is thread-bound)."""
    return render_episode(path, seed=seed, max_steps=max_steps)


st.title("Replay")
st.caption(
    "One episode of a run's policy acting deterministically (the most likely action, or the "
    "Gaussian mean, clipped to the action bounds), rendered off-screen and encoded as MP4. "
    "MuJoCo scenes are drawn in software on the CPU (70-140 ms a frame here): 1,000 steps "
    "take one to two minutes, less with a lower step cap."
)

run = pick_run(key="replay_run")
if run is None:
    st.stop()

path = str(run.path)
try:
    summary = checkpoint_summary(path)
except RunStoreError as exc:
    st.error(f"The checkpoint of this run cannot be read: {exc}")
    st.stop()

if summary is None:
    st.info(
        "This run has no checkpoint yet. A run saves one every `checkpoint_every` iterations "
        "and when it stops; come back once it has trained for a while."
    )
    st.stop()

st.markdown(
    f"**Checkpoint:** iteration {summary.iteration:,} ({summary.env_steps:,} env steps). "
    "A run keeps only its latest checkpoint, so this is the policy as it was last saved; "
    "while the run trains, the checkpoint is replaced and a new replay shows the newer policy."
)

left, middle, right = st.columns([1, 1, 1], vertical_alignment="bottom")
seed = int(
    left.number_input(
        "Seed",
        min_value=0,
        max_value=2**31 - 1,
        value=0,
        step=1,
        key="replay_seed",
        help="env.reset(seed=...): the same seed and checkpoint give the same episode.",
    )
)
max_steps = int(
    middle.selectbox(
        "Step cap",
        MAX_STEPS_CHOICES,
        index=len(MAX_STEPS_CHOICES) - 1,
        key="replay_max_steps",
        format_func=lambda n: f"{n:,} steps",
        help="The episode ends earlier if the env terminates or hits its time limit.",
    )
)
play = right.button("Play an episode", key="replay_play", type="primary")

request = {"run": run.id, "seed": seed, "max_steps": max_steps}
if play:
    version = summary.version
    try:
        with st.spinner(f"Rendering an episode of {run.id}…", show_time=True):
            replay = _replay(path, version, seed, max_steps)
    except NoCheckpointError as exc:
        st.info(str(exc))
        st.stop()
    except (ReplayError, *LIBRARY_ERRORS) as exc:
        st.error(f"No replay: {error_text(exc)}")
        st.stop()
    st.session_state[RESULT_KEY] = {**request, "version": version, "replay": replay}

shown = st.session_state.get(RESULT_KEY)
if shown is not None and all(shown[k] == v for k, v in request.items()):
    replay = shown["replay"]
    if shown["version"] != summary.version:
        st.caption(
            f"This replay used the checkpoint of iteration {replay.iteration:,}; a newer one "
            "has been saved since. Click Play to watch it."
        )
    ended = {
        "terminated": "the episode terminated",
        "truncated": "the episode reached the env's time limit",
        "max_steps": "stopped at the step cap",
    }.get(replay.ended, replay.ended)
    a, b, c = st.columns(3)
    a.metric("Episode return", f"{replay.episode_return:,.1f}")
    b.metric("Length", f"{replay.length:,} steps")
    c.metric("Checkpoint iteration", f"{replay.iteration:,}")
    video_column, _ = st.columns([2, 1])
    # A border: CartPole's white frames would otherwise merge into the page.
    video_column.container(border=True).video(
        replay.video, format="video/mp4", autoplay=True, muted=True
    )
    st.caption(
        f"{replay.env_id}, seed {replay.seed}: {ended}. {replay.frames:,} frames "
        f"(the reset state, then one per step) at {replay.fps} fps, {replay.width}x"
        f"{replay.height}, {len(replay.video) / 1024:,.0f} KiB; rendered and encoded in "
        f"{replay.render_seconds:.1f} s ({replay.ms_per_frame:.0f} ms a frame)."
    )
elif shown is None or shown["run"] != run.id:
    st.caption("Pick a seed and click **Play an episode**.")
