"""Take a run away from the workbench: its policy as ONNX, its records as TensorBoard event
files, or the whole run as one self-contained HTML report.

`export_run(run_dir, format, out)` is what `python -m trpo export` calls. Each format lives in
its own module and imports its heavy library (torch.onnx/onnxruntime, tensorboard, plotly) only
when it runs, so importing this package costs a trainer process nothing.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from trpo.export.output import ExportError

#: format -> what --out names
FORMATS: dict[str, str] = {
    "onnx": "FILE (.onnx)",
    "tensorboard": "DIR (event files go to DIR/<run id>/)",
    "html": "FILE (.html)",
}

__all__ = ["FORMATS", "ExportError", "export_run"]


def _exporter(fmt: str) -> Callable[[str | os.PathLike[str], str | os.PathLike[str]], Path]:
    if fmt == "onnx":
        from trpo.export.onnx_policy import export_onnx

        return export_onnx
    if fmt == "tensorboard":
        from trpo.export.tensorboard_events import export_tensorboard

        return export_tensorboard
    if fmt == "html":
        from trpo.export.html_report import export_html

        return export_html
    raise ExportError(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")


def export_run(run_dir: str | os.PathLike[str], fmt: str, out: str | os.PathLike[str]) -> Path:
    """Export the run in `run_dir` as `fmt` (one of FORMATS) to `out`; returns what was written
    (the file, or the event-file folder). Raises ExportError for an unknown format or an
    unwritable `out`, RunStoreError for a folder that is not a run or has no checkpoint (ONNX)."""
    return _exporter(fmt)(run_dir, out)
