"""Every page over run folders broken in every way (tests/conftest.py BREAKAGES): no exception
reaches Streamlit's error box, and an st.error or st.warning names each problem."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from tests.conftest import BREAKAGES
from trpo.store import RunStore

APP = str(Path(__file__).resolve().parent.parent / "pages" / "navigation.py")
# Folders without config.json are not runs: pickers cannot offer them, pages warn about them.
LISTED = [kind for kind in BREAKAGES if kind != "no-config"]
# Found only when the policy is loaded: by Play on Replay, by Resume on Train.
ON_LOAD = ("checkpoint-other-network",)


@pytest.fixture(autouse=True)
def full_error_details(fresh_streamlit):
    """Fresh caches; full exception details, so that a failure here says what was raised."""
    shown = st.get_option("client.showErrorDetails")
    st.set_option("client.showErrorDetails", "full")
    yield
    st.set_option("client.showErrorDetails", shown)


@pytest.fixture
def every_breakage(broken_runs, monkeypatch) -> Path:
    root = broken_runs("good", *BREAKAGES)
    monkeypatch.setenv("TRPO_RUNS_DIR", str(root))
    return root


def raised(at: AppTest) -> list[str]:
    """The exceptions that reached Streamlit, with the last lines of their stack traces."""
    return [f"{e.value} {' '.join(e.stack_trace[-3:])}" for e in at.exception]


def messages(at: AppTest, skip: str = "") -> str:
    """Every st.error and st.warning, but those that contain `skip`."""
    shown = [str(m.value) for m in [*at.error, *at.warning]]
    return "\n".join(m for m in shown if not skip or skip not in m)


class Report:
    """Collects every miss of one page, so one test run lists them all."""

    def __init__(self, page: str) -> None:
        self.page, self.misses = page, []

    def check(self, at: AppTest, kind: str, words: str | None = None) -> None:
        """No exception, and a message with the words (the kind's own, by default) that is not
        the warning about the folder without config.json (always there)."""
        words = words or BREAKAGES[kind][1]
        shown = messages(at, skip="" if kind == "no-config" else "**no-config**")
        if at.exception:
            self.misses.append(f"{kind}: exception {raised(at)}")
        elif words.lower() not in shown.lower():
            self.misses.append(f"{kind}: no error/warning with {words!r}: {shown!r}")

    def assert_none(self) -> None:
        assert not self.misses, f"{self.page}:\n" + "\n".join(self.misses)


def open_page(page: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    at.switch_page(page).run()
    return at


@pytest.mark.parametrize(
    ("page", "picker"),
    [
        # its charts for each of two dozen broken runs: about 6 s
        pytest.param("trust_region.py", "tr_run", marks=pytest.mark.slow),
        ("how_trpo_works.py", "how_run"),
        pytest.param("replay.py", "replay_run", marks=pytest.mark.slow),
    ],
)
def test_run_pages_name_every_problem(every_breakage, page, picker):
    report = Report(page)
    at = open_page(page)
    report.check(at, "no-config", "no config.json")
    ids = [run.id for run in RunStore(every_breakage).runs()]
    for kind in ["good", *LISTED]:
        at.selectbox(key=picker).select_index(ids.index(kind)).run()
        if at.exception:
            report.misses.append(f"{kind}: exception {raised(at)}")
            at = open_page(page)
            continue
        if page == "replay.py" and (kind.startswith(("config", "env")) or kind in ON_LOAD):
            play = at.button(key="replay_play")
            at.selectbox(key="replay_max_steps").set_value(100)
            play.click().run()
        if kind == "good":
            assert not at.exception and not at.error, messages(at)
        elif kind in ON_LOAD and page != "replay.py":
            assert not at.exception, raised(at)
        else:
            report.check(at, kind)
    report.assert_none()


def test_runs_page_names_every_problem(every_breakage):
    report = Report("runs.py")
    at = open_page("runs.py")
    assert not at.exception, raised(at)
    report.check(at, "no-config", "no-config")
    for kind in LISTED:
        if kind not in ON_LOAD:
            report.check(at, kind, kind)  # the run is named...
            report.check(at, kind)  # ...and so is its problem
    at.multiselect(key="runs_select").set_value(LISTED).run()
    report.check(at, "garbage-metrics")
    at.checkbox(key="group_seeds").check().run()
    report.check(at, "garbage-metrics")
    report.assert_none()


@pytest.mark.slow  # the Train page for each of two dozen broken runs
def test_train_page_names_every_problem(every_breakage):
    report = Report("train.py")
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    report.check(at, "no-config", "no-config")
    for kind in ["good", *LISTED]:
        at.session_state["current_run"] = kind
        if kind in ON_LOAD:  # stopped, so that Resume loads the checkpoint
            (every_breakage / kind / "status.json").write_text('{"state": "stopped"}')
            at.run()
            at.button(key="resume").click().run()
        else:
            at.run()
        if kind == "good":
            assert not at.exception and not at.error, messages(at)
        else:
            report.check(at, kind)
    report.assert_none()


@pytest.mark.slow  # a sweep of two dozen broken trials and four broken sweeps
def test_sweeps_page_names_every_problem(every_breakage, broken_runs):
    """A sweep whose trials are the broken runs, and sweeps whose own files are broken."""
    from trpo.config import TRPOConfig
    from trpo.sweep import SweepSpec, create_sweep, sweeps_root, trials

    kinds = [k for k in LISTED if not k.startswith("meta")]  # meta.json ties a run to a sweep
    spec = SweepSpec(
        base=TRPOConfig(total_steps=1024, steps_per_iteration=512),
        grid={"delta": [0.01]},
        seeds=list(range(len(kinds))),
    )
    sweep_id = create_sweep(spec, every_breakage)
    for trial, kind in zip(trials(spec), kinds, strict=True):
        meta = {"name": kind, "tags": {"sweep": sweep_id, "trial": trial.trial_id}}
        (every_breakage / kind / "meta.json").write_text(json.dumps(meta))
    root = sweeps_root(every_breakage)
    broken_sweeps = {
        "sweep-not-json": b"{not json",
        "sweep-binary": b"\xff\x00",
        "sweep-array": b"[1]",
        "sweep-bad-spec": json.dumps({"spec": {"base": {"delta": -1}}}).encode(),
    }
    for name, data in broken_sweeps.items():
        (root / name).mkdir()
        (root / name / "sweep.json").write_bytes(data)
    (root / sweep_id / "driver.json").write_bytes(b"\xff\x00 not json")

    report = Report("sweeps.py")
    at = open_page("sweeps.py")
    at.selectbox(key="sweep_pick").set_value(sweep_id).run()
    for name in broken_sweeps:
        report.check(at, name, name)
    report.check(at, "no-config", "no-config")
    for kind in kinds:
        if kind not in ON_LOAD:
            report.check(at, kind, kind)
            report.check(at, kind)
    report.assert_none()
