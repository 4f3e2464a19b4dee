"""The Runs, Trust region and How TRPO works pages, driven by Streamlit's AppTest on real runs."""

from __future__ import annotations

import io
import json
import math
import shutil
from pathlib import Path

import pandas as pd
import pytest
from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage
from streamlit.testing.v1 import AppTest

from tests.conftest import tiny_config
from trpo.session import TrainingSession
from trpo.store import Run, RunStore

APP = str(Path(__file__).resolve().parent.parent / "pages" / "navigation.py")
PAGES = ("runs.py", "trust_region.py", "how_trpo_works.py")


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """Two finished CartPole runs that differ only in the seed (made once per module)."""
    root = tmp_path_factory.mktemp("runs")
    store = RunStore(root)
    for seed in (0, 1):
        session = TrainingSession.new(
            tiny_config(seed=seed, total_steps=2048, cg_iters=10, probe_geometry=True),
            store,
            name=f"seed {seed}",
        )
        assert session.run() == "finished"
    return root


# a fresh registry per test (runs are stopped by the tests)
pytestmark = pytest.mark.usefixtures("fresh_streamlit")


@pytest.fixture
def runs_dir(trained, tmp_path, monkeypatch) -> Path:
    """A private copy of the trained runs (tests may delete them), as TRPO_RUNS_DIR."""
    root = tmp_path / "runs"
    shutil.copytree(trained, root)
    monkeypatch.setenv("TRPO_RUNS_DIR", str(root))
    return root


@pytest.fixture
def empty_dir(tmp_path, monkeypatch) -> Path:
    root = tmp_path / "no-runs-yet"
    monkeypatch.setenv("TRPO_RUNS_DIR", str(root))
    return root


def open_page(page: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=30)
    at.switch_page(page).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def charts(at: AppTest) -> dict[str, dict]:
    """Plotly specs by title."""
    found = {}
    for chart in at.get("plotly_chart"):
        spec = json.loads(chart.proto.spec)
        found[spec["layout"]["title"]["text"]] = spec
    return found


def metric(at: AppTest, label: str) -> str:
    values = [m.value for m in at.metric if m.label == label]
    assert values, f"no metric {label!r}: {[m.label for m in at.metric]}"
    return values[0]


def records(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


# --- every page, with and without runs ----------------------------------------------------------


@pytest.mark.parametrize("page", PAGES)
def test_page_renders_without_runs(empty_dir, page):
    at = open_page(page)
    assert not at.error


@pytest.mark.parametrize("page", PAGES)
def test_page_renders_with_runs(runs_dir, page):
    at = open_page(page)
    assert not at.error


# --- Runs ----------------------------------------------------------------------------------------


def test_runs_table_lists_every_run_with_status_and_steps(runs_dir):
    at = open_page("runs.py")
    table = at.dataframe[0].value
    runs = RunStore(runs_dir).runs()
    assert list(table["run id"]) == [r.id for r in runs]
    assert set(table["seed"]) == {0, 1}
    assert list(table["status"]) == ["finished", "finished"]
    assert list(table["env steps"]) == [2048, 2048]
    assert list(table["iterations"]) == [4, 4]
    assert set(table["name"]) == {"seed 0", "seed 1"}
    for _, row in table.iterrows():
        returns = [r["return_mean"] for r in records(runs_dir / row["run id"])]
        returns = [r for r in returns if r is not None]
        assert row["last return"] == pytest.approx(returns[-1])
        assert row["best return"] == pytest.approx(max(returns))


def test_runs_shows_a_run_started_from_the_cli_as_running(runs_dir):
    """A run marked running by a live process (here: this one) shows as running."""
    session = TrainingSession.new(tiny_config(seed=7), RunStore(runs_dir))
    session.trainer.close()  # status.json says running, with our pid
    at = open_page("runs.py")
    table = at.dataframe[0].value
    assert table.loc[table["run id"] == session.run_folder.id, "status"].item() == "running"
    assert table.loc[table["run id"] == session.run_folder.id, "env steps"].item() == 0


def test_runs_overlay_and_seed_groups(runs_dir):
    at = open_page("runs.py")
    assert sorted(at.multiselect(key="runs_select").value) == sorted(
        r.id for r in RunStore(runs_dir).runs()
    )
    overlay = charts(at)["Episode return (batch mean)"]
    assert len(overlay["data"]) == 2
    # the labels say what tells the runs apart (their names and the knob that differs)
    assert sorted(t["name"] for t in overlay["data"]) == ["seed 0 · seed=0", "seed 1 · seed=1"]
    assert overlay["layout"]["yaxis"]["title"]["text"] == "episode return (batch mean)"

    at.selectbox(key="runs_metric").set_value("kl").run()
    at.segmented_control(key="runs_x").set_value("iteration").run()
    at.toggle(key="runs_log").set_value(True).run()
    assert not at.exception
    kl = charts(at)["KL(π_old ‖ π_new) of the accepted step (nats)"]
    assert kl["layout"]["yaxis"]["type"] == "log"
    assert kl["layout"]["xaxis"]["title"]["text"] == "iteration"
    assert all(max(t["x"]) <= 4 for t in kl["data"])  # iterations, not env steps
    colors = {t["name"]: t["line"]["color"] for t in kl["data"]}
    assert len(set(colors.values())) >= 1 and all(c.startswith("#") for c in colors.values())

    at.slider(key="smoothing").set_value(3).run()
    assert not at.exception
    at.checkbox(key="group_seeds").check().run()
    assert not at.exception
    band = charts(at)[
        "KL(π_old ‖ π_new) of the accepted step (nats), mean over seeds with min-max band"
    ]
    means = [t for t in band["data"] if t.get("name")]
    assert len(means) == 1 and "(2 seeds)" in means[0]["name"]


def test_runs_csv_download_flattens_the_metrics(runs_dir, monkeypatch):
    downloads: dict[str, bytes] = {}
    original = MemoryMediaFileStorage.load_and_get_id

    def capture(self, path_or_data, mimetype, kind, filename=None):
        downloads[filename] = path_or_data
        return original(self, path_or_data, mimetype, kind, filename)

    monkeypatch.setattr(MemoryMediaFileStorage, "load_and_get_id", capture)
    at = open_page("runs.py")
    assert at.get_by_key("download_csv") is not None
    frame = pd.read_csv(io.BytesIO(downloads["trpo-metrics.csv"]))
    assert len(frame) == 8  # 2 runs x 4 iterations
    assert set(frame["run_id"]) == {p.name for p in runs_dir.iterdir()}
    assert not {"line_search", "geometry", "extra"} & set(frame.columns)
    assert {"delta", "alpha", "max_backtracks", "seed", "env_id"} <= set(frame.columns)
    assert sorted(frame.groupby("run_id")["seed"].first()) == [0, 1]
    first = records(runs_dir / frame["run_id"][0])[0]
    residuals = [float(v) for v in frame["cg_residuals"][0].split(";")]
    assert residuals == pytest.approx(first["cg_residuals"], rel=1e-5)
    assert frame["cg_iterations"][0] == len(first["cg_residuals"])
    if first["kl"] is None:
        assert math.isnan(frame["kl"][0])
    else:
        assert frame["kl"][0] == pytest.approx(first["kl"])


def test_delete_needs_confirmation(runs_dir):
    at = open_page("runs.py")
    target = at.selectbox(key="delete_target").value
    assert (runs_dir / target).is_dir()

    at.button(key="delete_run").click().run()
    assert not at.exception
    assert (runs_dir / target).is_dir(), "deleted without confirmation"
    assert at.get_by_key("confirm_delete") is not None

    at.button(key="cancel_delete").click().run()
    assert (runs_dir / target).is_dir()

    at.button(key="delete_run").click().run()
    at.button(key="confirm_delete").click().run()
    assert not at.exception
    assert not (runs_dir / target).exists()
    assert target not in list(at.dataframe[0].value["run id"])
    assert len(at.dataframe[0].value) == 1
    assert any("Deleted" in s.value for s in at.success)


@pytest.mark.slow  # a trainer process
def test_delete_refuses_running_and_foreign_folders(runs_dir, tmp_path):
    from pages.common import DeleteRefused, delete_run, get_registry

    registry = get_registry()
    handle = registry.start(tiny_config(total_steps=10**6, seed=3, probe_geometry=False))
    try:
        at = open_page("runs.py")
        at.selectbox(key="delete_target").set_value(handle.run_id).run()
        assert at.button(key="delete_run").disabled
        with pytest.raises(DeleteRefused, match="training"):
            delete_run(Run(runs_dir / handle.run_id))
        assert (runs_dir / handle.run_id / "config.json").is_file()
    finally:
        assert registry.stop(handle.run_id, timeout=30)

    outside = tmp_path / "elsewhere" / "some-run"
    outside.mkdir(parents=True)
    (outside / "config.json").write_text(tiny_config().to_json())
    with pytest.raises(DeleteRefused, match="not a run folder"):
        delete_run(Run(outside))
    assert outside.is_dir()


# --- Trust region ------------------------------------------------------------------------------


def test_trust_region_shows_the_chosen_iteration(runs_dir):
    at = open_page("trust_region.py")
    run_id = sorted(p.name for p in runs_dir.iterdir())[0]
    at.selectbox(key="tr_run").set_value(run_id).run()
    assert at.slider(key="tr_iteration").value == 4  # the latest by default
    at.slider(key="tr_iteration").set_value(2).run()
    assert not at.exception

    record = records(runs_dir / run_id)[1]
    assert record["iteration"] == 2
    specs = charts(at)
    line_search = specs["Line search of iteration 2"]
    kl_bars = line_search["data"][0]
    assert kl_bars["type"] == "bar"
    assert kl_bars["y"] == pytest.approx([c["kl"] for c in record["line_search"]])

    geometry = specs["Geometry along the step, iteration 2"]
    true_kl = next(t for t in geometry["data"] if t["name"] == "true KL")
    assert true_kl["y"] == pytest.approx(record["geometry"]["kl"])
    assert "CG residuals of iteration 2" in specs

    assert metric(at, "xᵀHx") == f"{record['x_h_x']:.4g}"
    assert metric(at, "gᵀx") == f"{record['g_dot_x']:.4g}"
    table = at.dataframe[0].value
    assert list(table["j"]) == [c["j"] for c in record["line_search"]]
    assert "probe cost, this iteration" in [m.label for m in at.metric]
    assert "accepted steps" in [m.label for m in at.metric]


def test_trust_region_explains_how_to_enable_the_probe(runs_dir):
    session = TrainingSession.new(
        tiny_config(total_steps=512, probe_geometry=False), RunStore(runs_dir)
    )
    session.run()
    at = open_page("trust_region.py")
    at.selectbox(key="tr_run").set_value(session.run_folder.id).run()
    assert not at.exception
    assert any("probe_geometry" in i.value for i in at.info)


def test_pages_show_the_fisher_spectrum_seen_through_cg(runs_dir):
    run_dir = sorted(runs_dir.iterdir())[0]
    rows = records(run_dir)
    at = open_page("trust_region.py")
    at.selectbox(key="tr_run").set_value(run_dir.name).run()
    at.slider(key="tr_iteration").set_value(2).run()
    assert not at.exception
    figure = charts(at)["The Fisher matrix seen through CG"]
    drawn = {t["name"]: t for t in figure["data"]}
    for name, field in [
        ("largest θ_max (≤ λ_max)", "fisher_eig_max"),
        ("smallest θ_min (≥ λ_min)", "fisher_eig_min"),
        ("θ_max / θ_min (≤ condition number)", "fisher_condition"),
        ("cos(g, x)", "cos_g_x"),
    ]:
        assert drawn[name]["x"] == [r["iteration"] for r in rows]
        assert drawn[name]["y"] == pytest.approx([r[field] for r in rows]), field
    assert 2 in [s["x0"] for s in figure["layout"]["shapes"]]  # the chosen iteration
    assert metric(at, "largest θ_max") == f"{rows[1]['fisher_eig_max']:.4g}"
    assert metric(at, "cos(g, x)") == f"{rows[1]['cos_g_x']:.3f}"

    at.switch_page("how_trpo_works.py").run()
    at.selectbox(key="how_run").set_value(run_dir.name).run()
    assert not at.exception
    assert metric(at, "θ_min") == f"{rows[-1]['fisher_eig_min']:.4g}"
    assert metric(at, "θ_max / θ_min") == f"{rows[-1]['fisher_condition']:.3g}"


# --- How TRPO works ------------------------------------------------------------------------------


def test_how_trpo_works_annotates_with_the_latest_record(runs_dir):
    at = open_page("how_trpo_works.py")
    assert len(at.latex) >= 8
    # through app.py's navigation the Train page is the default page, at the root URL
    assert {p.proto.page for p in at.get("page_link")} == {"trust_region", ""}

    run_id = at.selectbox(key="how_run").value
    latest = records(runs_dir / run_id)[-1]
    delta = tiny_config().delta

    def number(label: str) -> float:
        return float(metric(at, label))

    assert number("multiplier λ") == pytest.approx(
        math.sqrt(latest["g_dot_x"] / (2 * delta)), rel=1e-3
    )
    assert number("step scale s") == pytest.approx(latest["step_scale"], rel=1e-3)
    assert number("|g|") == pytest.approx(latest["grad_norm"], rel=1e-3)
    assert number("gᵀx") == pytest.approx(latest["g_dot_x"], rel=1e-3)
    assert number("xᵀHx") == pytest.approx(latest["x_h_x"], rel=1e-3)
    assert metric(at, "CG iterations") == f"{len(latest['cg_residuals'])} of 10"
    if latest["step_accepted"]:
        assert metric(at, "accepted j") == str(latest["backtrack_index"])
        assert number("KL of the step") == pytest.approx(latest["kl"], rel=1e-3)
    else:
        assert metric(at, "accepted j") == "rejected"


def test_how_trpo_works_without_a_run_shows_symbols(empty_dir):
    at = open_page("how_trpo_works.py")
    assert len(at.latex) >= 8
    assert not at.metric


def append_record(run_dir: Path, **changes) -> dict:
    """Append a copy of the last record as the next iteration, with changes."""
    last = records(run_dir)[-1]
    record = {**last, "iteration": last["iteration"] + 1, **changes}
    with open(run_dir / "metrics.jsonl", "a") as handle:
        handle.write(json.dumps(record) + "\n")
    return record


def test_trust_region_slider_follows_new_iterations_only_from_the_newest(runs_dir):
    run_dir = sorted(runs_dir.iterdir())[0]
    at = open_page("trust_region.py")
    at.selectbox(key="tr_run").set_value(run_dir.name).run()
    assert at.slider(key="tr_iteration").value == 4
    append_record(run_dir)
    at.run()
    assert at.slider(key="tr_iteration").value == 5  # was at the newest: follows
    at.slider(key="tr_iteration").set_value(2).run()
    append_record(run_dir)
    at.run()
    assert not at.exception
    assert at.slider(key="tr_iteration").value == 2  # an older iteration stays chosen
    assert "Line search of iteration 2" in charts(at)


def test_pages_explain_a_rejected_latest_step(runs_dir):
    run_dir = sorted(runs_dir.iterdir())[0]
    append_record(
        run_dir,
        step_accepted=False,
        backtrack_index=None,
        kl=None,
        reject_reason="KL above delta",
        step_norm=0.0,
    )
    at = open_page("trust_region.py")
    at.selectbox(key="tr_run").set_value(run_dir.name).run()
    assert not at.exception
    assert metric(at, "step rejected") == "θ kept"
    assert metric(at, "KL of the step") == "n/a"
    assert "KL above delta" in " ".join(c.value for c in at.caption)

    at.switch_page("how_trpo_works.py").run()
    at.selectbox(key="how_run").set_value(run_dir.name).run()
    assert not at.exception
    assert metric(at, "accepted j") == "rejected"
    assert metric(at, "αʲ") == "n/a"


@pytest.mark.parametrize(
    ("page", "key"),
    [
        ("trust_region.py", "tr_run"),
        ("replay.py", "replay_run"),
        ("how_trpo_works.py", "how_run"),
    ],
)
def test_a_link_names_the_run_shown_and_the_url_follows_the_choice(runs_dir, page, key):
    older, newer = sorted(p.name for p in runs_dir.iterdir())
    at = AppTest.from_file(APP, default_timeout=30)
    at.query_params["run"] = older  # as opened from a link on a fresh session
    at.switch_page(page).run()
    assert not at.exception
    assert at.selectbox(key=key).value == older
    at.selectbox(key=key).set_value(newer).run()
    assert at.query_params["run"] == [newer] or at.query_params["run"] == newer


@pytest.mark.parametrize("page", ["trust_region.py", "replay.py", "how_trpo_works.py"])
def test_a_link_to_a_missing_run_says_so_and_shows_the_newest(runs_dir, page):
    newer = RunStore(runs_dir).runs()[0].id  # the two runs share their id's second
    at = AppTest.from_file(APP, default_timeout=30)
    at.query_params["run"] = "20200101-000000-gone-abcdef"
    at.switch_page(page).run()
    assert not at.exception
    assert any("20200101-000000-gone-abcdef" in w.value for w in at.warning)
    assert at.query_params["run"] in ([newer], newer)


def test_a_trust_region_link_names_the_iteration(runs_dir):
    older = sorted(p.name for p in runs_dir.iterdir())[0]
    at = AppTest.from_file(APP, default_timeout=30)
    at.query_params.update({"run": older, "iteration": "2"})
    at.switch_page("trust_region.py").run()
    assert not at.exception
    assert at.slider(key="tr_iteration").value == 2
    assert "Line search of iteration 2" in charts(at)
    at.query_params["iteration"] = "99"  # not an iteration of the run: the newest is shown
    fresh = AppTest.from_file(APP, default_timeout=30)
    fresh.query_params.update({"run": older, "iteration": "99"})
    fresh.switch_page("trust_region.py").run()
    assert fresh.slider(key="tr_iteration").value == 4
