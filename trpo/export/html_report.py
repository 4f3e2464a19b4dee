"""One self-contained HTML report of a run, for sharing: its summary, the Train page's live
charts, the Trust region page's charts and its configuration, in one file that opens offline.

The figures are the dashboard's own (trpo.live_series/live_layout for the live panel,
trpo.trust_region_figures for the trust region), written with plotly's `to_html`: plotly.js is
embedded once, inline, with the first figure, so the file needs no server and no network.
"""

from __future__ import annotations

import html
import math
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trpo import analysis, live_layout, live_series, trust_region_figures
from trpo.config import TRPOConfig, knob_schema
from trpo.export.output import file_target, write_file
from trpo.formatting import fmt
from trpo.metrics_log import record_at
from trpo.store import Run, load_metrics, open_run

if TYPE_CHECKING:
    import pandas as pd

PLOTLY_CONFIG = {"displaylogo": False, "responsive": True}
LIVE_CHART_HEIGHT = 300  # px; the Train page's are 155 px to fit a projector
AXIS = "env steps"

STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #262730;
       margin: 0 auto; max-width: 1200px; padding: 1.5rem; line-height: 1.4; }
h1 { margin-bottom: 0.2rem; }
h2 { margin-top: 2rem; border-bottom: 1px solid #e6e6e6; padding-bottom: 0.3rem; }
.caption { color: #6b6f76; font-size: 0.9rem; }
table { border-collapse: collapse; font-size: 0.9rem; }
th, td { text-align: left; padding: 0.25rem 0.8rem 0.25rem 0; border-bottom: 1px solid #eee;
         vertical-align: top; }
td.number { text-align: right; font-variant-numeric: tabular-nums; }
.grid { display: grid; grid-template-columns: repeat(2, minmax(0, 1fr)); gap: 0.5rem 1rem; }
.grid.wide-narrow { grid-template-columns: minmax(0, 3fr) minmax(0, 2fr); }
.figure { min-width: 0; }
"""


def live_panel_figures(frame: pd.DataFrame, run_id: str, config: TRPOConfig) -> list[Any]:
    """The Train page's four live charts over env steps (episode return, KL of the accepted
    step against delta, accepted backtrack index j, CG residuals), as plotly figures drawn
    from the same data and layouts the page's browser component draws."""
    import plotly.graph_objects as go

    rejected = live_layout.rejected_y(config.max_backtracks)
    update, _ = live_series.plan(frame, None, run_id, AXIS, rejected)
    assert update is not None  # nothing held: always a full update
    body = live_layout.payload(update, run_id, AXIS, config.delta, config.max_backtracks)
    figures = []
    for chart in (*live_series.CHARTS, "cg"):
        spec = body["charts"][chart]
        figure = go.Figure(data=spec["data"], layout=spec["layout"])
        figures.append(figure.update_layout(height=LIVE_CHART_HEIGHT))
    return figures


def trust_region_section(frame: pd.DataFrame, config: TRPOConfig) -> dict[str, Any]:
    """The Trust region page's figures by name: the latest iteration's line_search, cg and
    geometry (when it was probed; none of the three before the first iteration), and the
    histograms kl_over_delta and improvement_ratio over all iterations."""
    figures: dict[str, Any] = {}
    if len(frame):
        record = record_at(frame, int(frame["iteration"].iloc[-1]))
        line_search, cg, geometry = trust_region_figures.iteration_figures(record, config)
        figures.update(line_search=line_search, cg=cg)
        if record.geometry is not None:
            figures["geometry"] = geometry
    summary = analysis.trust_region_summary(frame, config.delta)
    kl_hist, ratio_hist = trust_region_figures.summary_histograms(summary)
    figures.update(kl_over_delta=kl_hist, improvement_ratio=ratio_hist)
    return figures


def summary_rows(run: Run, config: TRPOConfig, frame: pd.DataFrame) -> list[tuple[str, str]]:
    """(what, value) pairs: the Runs table's row of the run, its training time and the trust
    region's record over all iterations."""
    import pandas as pd

    row = analysis.run_row(run.id, run.meta(), run.state(), config, frame)
    tr = analysis.trust_region_summary(frame, config.delta)
    started = row["started"]
    wall = float(frame["wall_time_s"].iloc[-1]) if len(frame) else math.nan
    return [
        ("name", str(row["name"])),
        ("run id", run.id),
        ("environment", str(row["env"])),
        ("status", str(row["status"])),
        ("iterations", f"{row['iterations']:,}"),
        ("env steps", f"{row['env steps']:,} of {config.total_steps:,}"),
        ("last mean return", fmt(row["last return"], ".1f")),
        ("best mean return", fmt(row["best return"], ".1f")),
        (
            "started (UTC)",
            "n/a" if pd.isna(started) else f"{started:%Y-%m-%d %H:%M}",
        ),
        ("training time", f"{fmt(wall, '.1f')} s"),
        ("δ, α, K", f"{config.delta:g}, {config.alpha:g}, {config.max_backtracks}"),
        ("accepted steps", fmt(tr["acceptance_rate"], ".0%")),
        ("line-search candidates tried", f"{tr['candidates']:,}"),
        ("candidates over δ (KL check failed)", f"{tr['failed_kl']:,}"),
        ("candidates without improvement", f"{tr['failed_improvement']:,}"),
        ("mean accepted j", fmt(tr["mean_backtrack_index"], ".2f")),
    ]


def config_rows(config: TRPOConfig) -> list[tuple[str, str, str]]:
    """(knob, its label with the paper's symbol, value) of every knob, in the schema's order."""
    rows = []
    for name, knob in knob_schema().items():
        value = getattr(config, name)
        shown = ", ".join(map(str, value)) if isinstance(value, tuple) else str(value)
        rows.append((name, knob.label, shown))
    return rows


def _table(rows: list[tuple[str, ...]], headers: list[str] | None = None, numbers: int = 0) -> str:
    """An HTML table of text cells (escaped), with a header row if headers are given; the last
    `numbers` columns right-aligned."""
    head = ""
    if headers:
        head = (
            "<thead><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in headers) + "</tr></thead>"
        )
    body = []
    for row in rows:
        cells = [
            f'<td class="number">{html.escape(c)}</td>'
            if i >= len(row) - numbers
            else f"<td>{html.escape(c)}</td>"
            for i, c in enumerate(row)
        ]
        body.append(f"<tr>{''.join(cells)}</tr>")
    return f"<table>{head}<tbody>{''.join(body)}</tbody></table>"


class _FigureWriter:
    """Figures as HTML divs: plotly.js inline with the first, none with the others."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, figure: Any) -> str:
        self.count += 1
        div = figure.to_html(
            full_html=False,
            include_plotlyjs=self.count == 1,  # True: the whole bundle, inline
            config=PLOTLY_CONFIG,
            div_id=f"figure-{self.count}",
        )
        return f'<div class="figure">{div}</div>'


def report_html(run_dir: str | os.PathLike[str]) -> str:
    """The report of the run in run_dir as one HTML document (see the module docstring).

    Raises RunStoreError for a folder that is not a run, ConfigError for an unreadable
    config."""
    run = open_run(run_dir)
    config = run.config()
    frame = load_metrics(run.path)
    title = analysis.shown_name(run.meta()) or run.id
    figure = _FigureWriter()
    live = "".join(figure(f) for f in live_panel_figures(frame, run.id, config))
    tr = {name: figure(f) for name, f in trust_region_section(frame, config).items()}
    made = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    latest = (
        f"The latest iteration ({int(frame['iteration'].iloc[-1])})"
        if len(frame)
        else "No iteration recorded yet"
    )
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(f"TRPO run {title} ({config.env_id})")}</title>
<style>{STYLE}</style>
</head>
<body>
<h1>{html.escape(title)}</h1>
<p class="caption">TRPO on {html.escape(config.env_id)} · run {html.escape(run.id)} ·
report made {made} by <code>python -m trpo export --format html</code>; the charts are
interactive (zoom, pan, hover) and need no network.</p>
<h2>Summary</h2>
{_table(summary_rows(run, config, frame))}
<h2>Training</h2>
<p class="caption">The Train page's live panel: episode return with its min-max band, the KL of
each accepted step against δ (rejected steps marked at the top: θ kept), the accepted backtrack
index j, and the conjugate-gradient residuals of the last iterations.</p>
<div class="grid">{live}</div>
<h2>Trust region</h2>
<p class="caption">{latest}: its line-search candidates j (KL against δ, actual against
expected improvement), its CG residuals and, when the geometry probe was on, the true KL and
surrogate along the step against TRPO's models; then the accepted steps of all iterations.</p>
<div class="grid wide-narrow">{tr.get("line_search", "")}{tr.get("cg", "")}</div>
{tr.get("geometry", "")}
<div class="grid">{tr["kl_over_delta"]}{tr["improvement_ratio"]}</div>
<h2>Configuration</h2>
{_table(config_rows(config), ["knob", "label", "value"], numbers=1)}
</body>
</html>
"""


def export_html(run_dir: str | os.PathLike[str], out: str | os.PathLike[str]) -> Path:
    """Write the run's report (`report_html`) to `out`; returns the file. Raises ExportError
    for an --out that cannot be written (checked first), RunStoreError for a folder that is not
    a run."""
    target = file_target(out, "report.html")
    return write_file(target, report_html(run_dir).encode("utf-8"))
