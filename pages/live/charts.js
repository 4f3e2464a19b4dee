// The Train page's four live charts, a Streamlit v2 component mounted by pages/live/charts.py.
//
// The figures stay in the page; the server sends what trpo.live_series.plan decided:
//   full:  every chart's data and layout, drawn with Plotly.react (uirevision keeps a zoom,
//          a pan and legend clicks when the run and x axis are the same);
//   delta: per trace, keep the first `keep` points and append the new ones, for the charts
//          that changed (the CG chart, small, is replaced whole);
//   same:  nothing is new (the epoch and record count this page should hold).
// Streamlit calls this function only when the data string changed: refreshes with no new
// record all send the same "same", so they run nothing here. A delta or a "same" that does not
// fit what this page holds (a remount, a lost message) asks the server for a full one through
// the "sync" trigger, as does a page without plotly.js.
// window.__trpoLiveCharts counts what happened (calls, fulls, deltas, redraws, points received,
// points appended to the time series by deltas, syncs), for tests and for the curious.

const CHARTS = ["returns", "kl", "backtrack", "cg"];
const CONFIG = {
  displaylogo: false,
  responsive: true,
  modeBarButtonsToRemove: ["select2d", "lasso2d", "autoScale2d", "zoomIn2d", "zoomOut2d"],
};

function stats() {
  if (!window.__trpoLiveCharts) {
    window.__trpoLiveCharts = {
      calls: 0,
      fulls: 0,
      deltas: 0,
      redraws: 0,
      points: 0,
      appended: 0,
      syncs: 0,
    };
  }
  return window.__trpoLiveCharts;
}

function loadPlotly(source) {
  // plotly.js's bundle, from the plotly Python package via the server (no CDN): a classic
  // script runs at once and defines window.Plotly.
  const script = document.createElement("script");
  script.textContent = source;
  document.head.appendChild(script);
}

function countPoints(traces) {
  return traces.reduce((n, t) => n + (t.x ? t.x.length : 0), 0);
}

// Re-show the hover box where it was: an update redraws the traces and plotly drops the box.
function watchHover(gd, state) {
  gd.on("plotly_hover", (event) => {
    const point = event.points && event.points[0];
    if (point) state.hover = { xval: point.x };
  });
  gd.on("plotly_unhover", () => {
    if (!state.drawing) state.hover = null;
  });
  gd.addEventListener("mouseleave", () => {
    state.hover = null;
  });
}

// Plotly.react does its work at once; waiting for a new task before each chart keeps the page
// responsive (four short tasks, not one long one).
const nextTask = () => new Promise((resolve) => setTimeout(resolve, 0));

// The app's theme (light or dark), from the CSS variables Streamlit gives its components.
function themed(root, layout) {
  const css = getComputedStyle(root);
  const value = (name) => css.getPropertyValue(name).trim() || undefined;
  const text = value("--st-text-color");
  if (!text) return layout;
  const lines = value("--st-border-color-light") || value("--st-border-color");
  const axis = (a) => ({ ...a, gridcolor: lines, zerolinecolor: lines, linecolor: lines });
  return {
    ...layout,
    paper_bgcolor: "rgba(0,0,0,0)",
    plot_bgcolor: "rgba(0,0,0,0)",
    font: { ...layout.font, color: text, family: value("--st-font") },
    hoverlabel: { bgcolor: value("--st-background-color"), font: { color: text } },
    xaxis: axis(layout.xaxis),
    yaxis: axis(layout.yaxis),
  };
}

// A new layout from the server has no axis ranges: keep the ones this chart shows if they were
// set by hand (a zoom or a pan, with the mouse or Plotly.relayout) for the same run and x axis.
// uirevision alone keeps only what was done with the mouse.
function keepRanges(gd, layout) {
  const old = gd.layout;
  if (!old || old === layout || old.uirevision !== layout.uirevision) return layout;
  const kept = { ...layout };
  for (const axis of ["xaxis", "yaxis"]) {
    if (old[axis] && old[axis].autorange === false && Array.isArray(old[axis].range)) {
      kept[axis] = { ...layout[axis], range: old[axis].range.slice(), autorange: false };
    }
  }
  return kept;
}

async function draw(gd, data, layout, state) {
  await nextTask();
  state.drawing = true;
  try {
    await window.Plotly.react(gd, data, keepRanges(gd, layout), CONFIG);
    if (state.hover) window.Plotly.Fx.hover(gd, state.hover);
  } finally {
    state.drawing = false;
  }
  stats().redraws += 1;
}

function chartState(root, name) {
  root.__charts = root.__charts || {};
  if (!root.__charts[name]) {
    const gd = root.querySelector(`[data-chart="${name}"]`);
    root.__charts[name] = { gd, hover: null, drawing: false, watched: false };
  }
  return root.__charts[name];
}

async function applyFull(root, payload) {
  stats().fulls += 1;
  const cg = chartState(root, "cg");
  clearTimeout(cg.timer);
  cg.timer = null;
  cg.drawnAt = Date.now();
  for (const name of CHARTS) {
    const chart = payload.charts[name];
    const state = chartState(root, name);
    stats().points += countPoints(chart.data);
    await draw(state.gd, chart.data, themed(root, chart.layout), state);
    if (!state.watched) {
      watchHover(state.gd, state);
      state.watched = true;
    }
  }
}

async function applyDelta(root, payload) {
  stats().deltas += 1;
  for (const [name, traces] of Object.entries(payload.charts)) {
    const state = chartState(root, name);
    const gd = state.gd;
    const changed = traces.some((t, i) => t.x.length > 0 || t.keep !== gd.data[i].x.length);
    if (!changed) continue;
    const data = gd.data.map((old, i) => {
      const t = traces[i];
      const next = { ...old };
      for (const key of ["x", "y", "text"]) {
        if (t[key]) next[key] = (old[key] || []).slice(0, t.keep).concat(t[key]);
      }
      return next;
    });
    stats().points += countPoints(traces);
    stats().appended += countPoints(traces);
    await draw(gd, data, gd.layout, state);
  }
  if (payload.cg) {
    stats().points += countPoints(payload.cg.data);
    drawCgSoon(root, payload.cg);
  }
}

// The CG chart shows the last iteration's residuals and changes with every record: redrawing
// it with every delta doubled nothing a person can follow. It is redrawn at most every
// CG_EVERY_MS, with the newest residuals (a full update draws it at once).
const CG_EVERY_MS = 1000;

function drawCgSoon(root, cg) {
  const state = chartState(root, "cg");
  state.pending = cg;
  if (state.timer) return;
  const wait = Math.max(0, (state.drawnAt || 0) + CG_EVERY_MS - Date.now());
  state.timer = setTimeout(() => {
    state.timer = null;
    const next = state.pending;
    state.pending = null;
    state.drawnAt = Date.now();
    root.__queue = (root.__queue || Promise.resolve()).then(() =>
      draw(state.gd, next.data, themed(root, next.layout), state),
    );
  }, wait);
}

function resizeWith(root) {
  if (root.__observer) return;
  root.__observer = new ResizeObserver(() => {
    for (const name of CHARTS) {
      const gd = root.querySelector(`[data-chart="${name}"]`);
      if (gd && gd.data && window.Plotly) window.Plotly.Plots.resize(gd);
    }
  });
  root.__observer.observe(root);
}

function cleanupFor(root) {
  // Streamlit calls the cleanup of the last call when the component unmounts, and also, at
  // once, that of a call overtaken by newer data: only a root gone from the page is released.
  return () => {
    if (root.isConnected) return;
    if (root.__observer) root.__observer.disconnect();
    root.__observer = null;
    if (root.__charts && root.__charts.cg) clearTimeout(root.__charts.cg.timer);
    for (const name of CHARTS) {
      const gd = root.querySelector(`[data-chart="${name}"]`);
      if (gd && window.Plotly) window.Plotly.purge(gd);
    }
  };
}

function handle(root, payload, setTriggerValue) {
  if (payload.plotly_js && !window.Plotly) loadPlotly(payload.plotly_js);
  const held = root.__held || { epoch: null, n: null };
  const sync = () => {
    stats().syncs += 1;
    setTriggerValue("sync", { epoch: held.epoch, n: held.n, plotly: Boolean(window.Plotly) });
  };
  if (!window.Plotly) return sync();
  if (held.epoch === payload.epoch && held.n === payload.n) return undefined; // already drawn
  if (payload.kind === "same") return sync(); // this page does not hold what it should
  if (payload.kind === "delta" && (held.epoch !== payload.epoch || held.n !== payload.base)) {
    return sync();
  }
  root.__held = { epoch: payload.epoch, n: payload.n };
  // updates are drawn one after the other, in the order they came; one that fails leaves the
  // page unsure of what it holds: it asks for everything again
  root.__queue = (root.__queue || Promise.resolve())
    .then(() => (payload.kind === "full" ? applyFull(root, payload) : applyDelta(root, payload)))
    .catch((error) => {
      console.error("live charts: an update could not be drawn", error);
      root.__held = null;
      setTriggerValue("sync", { epoch: null, n: null, plotly: Boolean(window.Plotly) });
    });
  resizeWith(root);
  return undefined;
}

export default function (component) {
  const { data, parentElement, setTriggerValue } = component;
  stats().calls += 1;
  const root = parentElement.querySelector(".trpo-live-charts");
  if (!root) return undefined;
  if (typeof data === "string") handle(root, JSON.parse(data), setTriggerValue);
  return cleanupFor(root);
}
