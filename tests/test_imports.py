"""What importing the library costs and does: a trainer process (dashboard run, sweep trial,
CLI) starts without the table and chart libraries,."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TRAINING_ENTRY_POINTS = ("trpo.cli", "trpo.trainer_process", "trpo.session", "trpo.store")
NOT_FOR_TRAINING = ("pandas", "plotly", "streamlit", "ray", "optuna")


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
