"""What importing the library costs and does: a trainer process (dashboard run, sweep trial,
CLI) starts without the table and chart libraries, and no module of ours changes the
environment at import."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # fresh interpreters importing torch

ROOT = Path(__file__).resolve().parent.parent
#: Dependencies that change os.environ when imported (gymnasium sets
#: PYGAME_HIDE_SUPPORT_PROMPT, ray RAY_CLIENT_MODE): imported before the "before" snapshot.
SETS_ENV_AT_IMPORT = ("gymnasium", "ray")
TRAINING_ENTRY_POINTS = (
    "trpo.cli",
    "trpo.trainer_process",
    "trpo.session",
    "trpo.store",
    "trpo.sweep.trial",
    "trpo.sweep.local",
)
NOT_FOR_TRAINING = (
    *("pandas", "plotly", "streamlit", "ray", "optuna"),
    *("onnx", "onnxruntime", "onnxscript", "tensorboard"),  # python -m trpo export's
)


def fresh_import(code: str) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def test_a_trainer_process_imports_no_table_or_chart_library():
    """pandas alone took 0.5-0.9 s of a trainer's start on this machine (python -X importtime)."""
    loaded = fresh_import(
        "import json, sys\n"
        + "".join(f"import {m}\n" for m in TRAINING_ENTRY_POINTS)
        + f"print(json.dumps([m for m in {NOT_FOR_TRAINING!r} if m in sys.modules]))"
    )
    assert loaded == []


def test_importing_every_library_module_leaves_the_environment_alone():
    modules = sorted(
        ".".join(p.relative_to(ROOT).with_suffix("").parts)
        for p in (ROOT / "trpo").rglob("*.py")
        if p.name != "__main__.py"
    )
    changed = fresh_import(
        "import importlib, json, os\n"
        + "".join(f"import {m}\n" for m in SETS_ENV_AT_IMPORT)
        + "before = dict(os.environ)\n"
        + f"for m in {modules!r}: importlib.import_module(m.removesuffix('.__init__'))\n"
        + "after = dict(os.environ)\n"
        + "print(json.dumps(sorted(k for k in before.keys() | after.keys()"
        + " if before.get(k) != after.get(k))))"
    )
    assert changed == []
