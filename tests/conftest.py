"""Shared by the tests: one thread for torch, the tiny config, polling helpers, the AppTest
runs directory, a trained tiny run and run folders broken in every way we know of."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

from trpo.config import TRPOConfig

# Tiny networks: one thread is fastest and keeps float results reproducible.
torch.set_num_threads(1)

# A CartPole run that trains in about a second: two iterations of 512 steps on 2 envs.
TINY: dict[str, Any] = dict(
    env_id="CartPole-v1",
    total_steps=1024,
    steps_per_iteration=512,
    n_envs=2,
    vf_epochs=1,
    cg_iters=5,
    seed=0,
)


def tiny_config(*layers: str | dict[str, Any], **overrides: Any) -> TRPOConfig:
    """The tiny config (TINY), then each layer in turn (an env id, or a dict of knobs a test
    module shares), then `overrides`: tiny_config("Pendulum-v1", SMALL, delta=0.05)."""
    values = dict(TINY)
    for layer in layers:
        values.update({"env_id": layer} if isinstance(layer, str) else layer)
    return TRPOConfig(**{**values, **overrides})


def wait_for(predicate: Callable[[], object], timeout: float = 60.0, every: float = 0.05) -> bool:
    """Poll `predicate` until it is true (True) or `timeout` seconds have passed (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(every)
    return bool(predicate())


def wait_until(
    predicate: Callable[[], object], timeout: float = 60.0, what: str = "condition"
) -> None:
    """wait_for, failing the test (AssertionError naming `what`) on a timeout."""
    if not wait_for(predicate, timeout, every=0.1):
        raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")


@pytest.fixture
def fresh_streamlit() -> Iterator[None]:
    """Streamlit's caches (the dashboard's registry among them) cleared before and after."""
    import streamlit as st

    st.cache_data.clear()
    st.cache_resource.clear()
    yield
    st.cache_data.clear()
    st.cache_resource.clear()


@pytest.fixture
def app_runs_dir(
    fresh_streamlit: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Path]:
    """An empty runs directory (not yet created) as TRPO_RUNS_DIR, for pages under AppTest.
    After the test, the runs and sweeps the pages started are stopped and none is left
    training."""
    from pages import common
    from trpo.store import RunStore

    runs = tmp_path / "runs"
    monkeypatch.setenv("TRPO_RUNS_DIR", str(runs))
    yield runs
    common.get_sweep_launches().stop_all()
    common.get_registry().stop_all(timeout=60)
    assert not [r.id for r in RunStore(runs).runs() if r.state() == "running"]


CONFIG, METRICS, STATUS, META = "config.json", "metrics.jsonl", "status.json", "meta.json"
CHECKPOINT = "checkpoint.safetensors"


def _edit_json(name: str, change: Callable[[dict], object]) -> Callable[[Path], None]:
    def edit(folder: Path) -> None:
        data = json.loads((folder / name).read_text())
        (folder / name).write_text(json.dumps(change(data)))

    return edit


def _write(name: str, data: bytes | str) -> Callable[[Path], None]:
    def edit(folder: Path) -> None:
        path = folder / name
        path.write_bytes(data if isinstance(data, bytes) else data.encode())

    return edit


def _remove(name: str) -> Callable[[Path], None]:
    return lambda folder: (folder / name).unlink()


def _stopped(edit: Callable[[Path], None]) -> Callable[[Path], None]:
    """The edit, on a run marked stopped (so that missing data is a problem, not progress)."""

    def both(folder: Path) -> None:
        edit(folder)
        (folder / STATUS).write_text(json.dumps({"state": "stopped", "error": None}))

    return both


def _metrics_directory(folder: Path) -> None:
    (folder / METRICS).unlink()
    (folder / METRICS).mkdir()


def _truncated_checkpoint(folder: Path) -> None:
    data = (folder / CHECKPOINT).read_bytes()
    (folder / CHECKPOINT).write_bytes(data[: len(data) // 2])


def _garbage_metrics(folder: Path) -> None:
    lines = (folder / METRICS).read_bytes().splitlines(keepends=True)
    junk = [b"not json at all\n", b"\xff\xfe binary \x00\n", b'{"no": "iteration"}\n', b"[1, 2]\n"]
    mixed = [line for pair in zip(lines, junk, strict=False) for line in pair] + lines[len(junk) :]
    (folder / METRICS).write_bytes(b"".join(mixed))


def _wrong_types(folder: Path) -> None:
    """Records that parse, with an integer iteration, and every other field of the wrong type."""
    rows = [json.loads(line) for line in (folder / METRICS).read_text().splitlines()]
    bad = {
        "env_steps": None,
        "return_mean": "high",
        "kl": [1],
        "step_accepted": "maybe",
        "backtrack_index": "two",
        "cg_residuals": "small",
        "line_search": "none",
        "geometry": [1, 2],
        "iteration_time_s": {},
        "time_probe_s": "x",
    }
    rows[-1] = {**rows[-1], **bad}
    rows.append({"iteration": rows[-1]["iteration"] + 1})
    (folder / METRICS).write_text("".join(json.dumps(r) + "\n" for r in rows))


# kind -> (how to break a good run folder, words the page's message must contain)
BREAKAGES: dict[str, tuple[Callable[[Path], None], str]] = {
    "no-config": (_remove(CONFIG), "config.json"),
    "config-not-json": (_write(CONFIG, "{not json"), "not valid JSON"),
    "config-array": (_write(CONFIG, "[1, 2]"), "must be a JSON object"),
    "config-binary": (_write(CONFIG, b"\xff\xfe\x00\x81"), "not UTF-8"),
    "config-unknown-key": (
        _edit_json(CONFIG, lambda c: {**c, "old_knob": 3}),
        "unknown config key(s): old_knob",
    ),
    "config-invalid-value": (_edit_json(CONFIG, lambda c: {**c, "delta": -1}), "delta"),
    "config-older-version": (
        _edit_json(CONFIG, lambda c: {k: v for k, v in c.items() if k != "checkpoint_every"}),
        "checkpoint_every",
    ),
    "env-unknown": (
        _edit_json(CONFIG, lambda c: {**c, "env_id": "NoSuchEnv-v0"}),
        "NoSuchEnv-v0",
    ),
    "no-metrics": (_stopped(_remove(METRICS)), "no recorded iteration"),
    "empty-metrics": (_stopped(_write(METRICS, b"")), "no recorded iteration"),
    "garbage-metrics": (_garbage_metrics, "unreadable line"),
    "metrics-wrong-types": (_wrong_types, "wrong type"),
    "metrics-directory": (_metrics_directory, METRICS),
    "no-checkpoint": (_stopped(_remove(CHECKPOINT)), "no checkpoint"),
    "checkpoint-garbage": (_write(CHECKPOINT, b"\x00garbage" * 10), "not a valid checkpoint"),
    "checkpoint-truncated": (_truncated_checkpoint, "not a valid checkpoint"),
    "checkpoint-other-network": (
        _edit_json(CONFIG, lambda c: {**c, "hidden_sizes": [8]}),
        "does not match",
    ),
    "status-garbage": (_write(STATUS, "{{{"), STATUS),
    "status-binary": (_write(STATUS, b"\xff\x00"), STATUS),
    "status-array": (_write(STATUS, "[1]"), STATUS),
    "status-wrong-types": (_write(STATUS, '{"state": 5, "pid": "x", "error": [1]}'), STATUS),
    "meta-garbage": (_write(META, "nope"), META),
    "meta-wrong-types": (_write(META, '{"name": 5, "tags": "x", "created": [1]}'), META),
}


@pytest.fixture(scope="session")
def good_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished tiny CartPole run with metrics, geometry probes and a checkpoint."""
    from trpo.session import TrainingSession
    from trpo.store import RunStore

    config = tiny_config(probe_geometry=True)
    session = TrainingSession.new(config, RunStore(tmp_path_factory.mktemp("good")), name="good")
    assert session.run() == "finished"
    return session.run_folder.path


@pytest.fixture
def broken_runs(good_run: Path, tmp_path: Path) -> Callable[..., Path]:
    """broken_runs(*kinds) -> a runs directory with one copy of the good run per kind, broken
    that way, in folders named '<kind>' (and 'good' for an intact copy)."""

    def make(*kinds: str) -> Path:
        root = tmp_path / "runs"
        root.mkdir(exist_ok=True)
        for kind in kinds:
            folder = root / kind
            shutil.copytree(good_run, folder)
            _edit_json(META, lambda meta, kind=kind: {**meta, "name": kind})(folder)
            if kind != "good":
                BREAKAGES[kind][0](folder)
        return root

    return make


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless Debian Chromium for one browser test module (skipped without Playwright)."""
    from tests.browser_support import launch

    yield from launch()


@pytest.fixture(scope="module")
def warmed(server: tuple[str, Path], browser: Any) -> None:
    """The module's dashboard (its `server` fixture) loaded once, so that no test pays the cold
    first navigation; browser modules use it through pytest.mark.usefixtures."""
    from tests.browser_support import warm

    warm(server[0], browser)
