"""Caches of file contents see a rewrite that keeps the file's size and mtime."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from trpo.config import TRPOConfig
from trpo.sweep import SweepSpec, create_sweep, load_sweep, sweep_path

APP = str(Path(__file__).resolve().parent.parent / "pages" / "navigation.py")


def rewrite_keeping_size_and_mtime(path: Path, old: bytes, new: bytes) -> None:
    assert len(old) == len(new)
    before = path.stat()
    data = path.read_bytes()
    at = data.rindex(old)
    path.write_bytes(data[:at] + new + data[at + len(old) :])
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = path.stat()
    assert (after.st_size, after.st_mtime_ns) == (before.st_size, before.st_mtime_ns)


def test_load_sweep_sees_a_rewrite_with_the_same_size_and_mtime(tmp_path):
    spec = SweepSpec(base=TRPOConfig(), grid={"delta": [0.01]}, seeds=[0], name="first")
    sweep_id = create_sweep(spec, tmp_path)
    assert load_sweep(tmp_path, sweep_id).name == "first"
    path = sweep_path(tmp_path, sweep_id) / "sweep.json"
    rewrite_keeping_size_and_mtime(path, b'"first"', b'"other"')
    assert load_sweep(tmp_path, sweep_id).name == "other"


@pytest.fixture
def one_run(broken_runs, monkeypatch) -> Path:
    root = broken_runs("good")
    monkeypatch.setenv("TRPO_RUNS_DIR", str(root))
    st.cache_data.clear()
    st.cache_resource.clear()
    yield root / "good"
    st.cache_data.clear()
    st.cache_resource.clear()


def test_runs_page_sees_a_metrics_rewrite_with_the_same_size_and_mtime(one_run):
    at = AppTest.from_file(APP, default_timeout=60)
    at.switch_page("runs.py").run()
    last = json.loads((one_run / "metrics.jsonl").read_text().splitlines()[-1])
    assert at.dataframe[0].value["last return"][0] == pytest.approx(last["return_mean"])

    old = json.dumps(last["return_mean"]).encode()
    new = (b"8" if old[:1] == b"9" else bytes([old[0] + 1])) + old[1:]
    key = b'"return_mean":'
    rewrite_keeping_size_and_mtime(one_run / "metrics.jsonl", key + old, key + new)
    at.run()
    assert not at.exception
    assert at.dataframe[0].value["last return"][0] == pytest.approx(float(new))
