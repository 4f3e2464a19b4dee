"""`python -m trpo export --format html`: one self-contained report (plotly.js inside once, no
outside resource), its summary and configuration tables, its figures from the dashboard's own
data; and the export command's clear errors for bad input (exit code 2, nothing written)."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser

import pytest

from trpo.cli import main
from trpo.export.html_report import report_html
from trpo.store import load_metrics, open_run


class Page(HTMLParser):
    """What the report holds: script sources, inline script texts, table cells, link targets."""

    def __init__(self) -> None:
        super().__init__()
        self.sources: list[str] = []
        self.scripts: list[str] = []
        self.cells: list[str] = []
        self.links: list[str] = []
        self._in: str | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "script":
            if attrs.get("src"):
                self.sources.append(attrs["src"])
            self._in = "script"
            self.scripts.append("")
        elif tag in ("td", "th"):
            self._in = "cell"
            self.cells.append("")
        elif tag in ("link", "img", "iframe"):
            self.links.append(attrs.get("href") or attrs.get("src") or "")

    def handle_endtag(self, tag):
        self._in = None

    def handle_data(self, data):
        if self._in == "script":
            self.scripts[-1] += data
        elif self._in == "cell":
            self.cells[-1] += data


def parse(text: str) -> Page:
    page = Page()
    page.feed(text)
    return page


def figures(page: Page) -> list[dict]:
    """The figures the report draws: the data and layout of every Plotly.newPlot call."""
    decoder = json.JSONDecoder()
    found = []
    for script in page.scripts:
        for call in re.finditer(r'Plotly\.newPlot\(\s*"([^"]+)",\s*', script):
            data, end = decoder.raw_decode(script, call.end())
            start = end + len(re.match(r",\s*", script[end:])[0])
            layout, _ = decoder.raw_decode(script, start)
            found.append({"id": call[1], "data": data, "layout": layout})
    return found


def test_the_report_is_one_self_contained_file(good_run, tmp_path, capsys):
    out = tmp_path / "report.html"
    assert main(["export", str(good_run), "--format", "html", "--out", str(out)]) == 0
    assert f"wrote {out}" in capsys.readouterr().out
    text = out.read_text(encoding="utf-8")
    page = parse(text)
    assert page.sources == [] and page.links == []  # nothing fetched from anywhere
    bundles = [s for s in page.scripts if "plotly.js v" in s[:2000]]
    assert len(bundles) == 1  # plotly.js once, inline
    run = open_run(good_run)
    config = run.config()
    cells = page.cells
    assert run.id in cells and "good" in cells and config.env_id in cells
    frame = load_metrics(good_run)
    assert f"{int(frame['env_steps'].iloc[-1]):,} of {config.total_steps:,}" in cells
    for knob, value in (("delta", config.delta), ("max_backtracks", config.max_backtracks)):
        assert cells[cells.index(knob) + 2] == str(value)
    drawn = figures(page)
    titles = [f["layout"]["title"]["text"] for f in drawn]
    last = int(frame["iteration"].iloc[-1])
    assert titles == [
        "Episode return",
        "KL of the accepted step",
        "Accepted backtrack index j",
        "Conjugate-gradient residuals",
        f"Line search of iteration {last}",
        f"CG residuals of iteration {last}",
        f"Geometry along the step, iteration {last}",
        "KL / δ of the accepted steps",
        "Actual / expected improvement of the accepted steps",
    ]
    returns = drawn[0]["data"][-1]  # the mean line, over env steps: the run's own numbers
    assert returns["x"] == frame["env_steps"].tolist()
    assert returns["y"] == pytest.approx(frame["return_mean"].tolist())
    kl = drawn[1]["data"][0]
    assert kl["y"] == pytest.approx(frame["kl"].tolist())
    cg = drawn[5]["data"][0]
    assert cg["y"] == pytest.approx(frame["cg_residuals"].iloc[-1])


def test_a_run_without_records_still_makes_a_report_and_text_is_escaped(good_run, tmp_path):
    folder = tmp_path / "fresh"
    folder.mkdir()
    for name in ("config.json", "status.json"):
        (folder / name).write_bytes((good_run / name).read_bytes())
    (folder / "meta.json").write_text(json.dumps({"name": "<script>alert(1)</script>"}))
    (folder / "metrics.jsonl").touch()
    text = report_html(folder)
    assert "<script>alert(1)</script>" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    page = parse(text)
    titles = [f["layout"]["title"]["text"] for f in figures(page)]
    assert titles[:4] == [
        "Episode return",
        "KL of the accepted step",
        "Accepted backtrack index j",
        "Conjugate-gradient residuals",
    ]
    assert len(titles) == 6  # no iteration: only the two histograms of the trust region


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["MISSING", "--format", "onnx", "--out", "{tmp}/p.onnx"], "no run folder"),
        (["MISSING", "--format", "html", "--out", "{tmp}/r.html"], "no run folder"),
        (["{nockpt}", "--format", "onnx", "--out", "{tmp}/p.onnx"], "no checkpoint"),
        (["{run}", "--format", "onnx", "--out", "{tmp}/no/such/p.onnx"], "does not exist"),
        (["{run}", "--format", "html", "--out", "{tmp}/file.txt/r.html"], "is not a folder"),
        (["{run}", "--format", "onnx", "--out", "{tmp}"], "is a folder"),
        (["{run}", "--format", "tensorboard", "--out", "{tmp}/file.txt"], "is a file"),
    ],
)
def test_bad_input_is_one_clear_message_and_exit_code_2(
    args, message, good_run, broken_runs, tmp_path, capsys
):
    (tmp_path / "file.txt").write_text("not a folder")
    no_checkpoint = broken_runs("no-checkpoint") / "no-checkpoint"
    before = sorted(tmp_path.rglob("*"))
    values = {"tmp": tmp_path, "run": good_run, "nockpt": no_checkpoint}
    argv = ["export", *(a.format(**values) for a in args)]
    assert main([*argv, "--runs-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and "Traceback" not in err
    assert sorted(tmp_path.rglob("*")) == before  # nothing written


def test_an_unknown_format_is_refused_by_the_parser(good_run, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["export", str(good_run), "--format", "pdf", "--out", "x.pdf"])
    assert exit_info.value.code == 2
    assert "invalid choice: 'pdf'" in capsys.readouterr().err


def test_a_run_id_is_looked_up_in_the_runs_dir(good_run, tmp_path, capsys):
    argv = ["export", good_run.name, "--runs-dir", str(good_run.parent)]
    assert main([*argv, "--format", "tensorboard", "--out", str(tmp_path)]) == 0
    assert (tmp_path / good_run.name).is_dir()


def test_export_run_names_the_formats_for_an_unknown_one(good_run, tmp_path):
    from trpo.export import ExportError, export_run

    with pytest.raises(ExportError, match="onnx, tensorboard, html"):
        export_run(good_run, "pdf", tmp_path / "x.pdf")
    assert not (tmp_path / "x.pdf").exists()
