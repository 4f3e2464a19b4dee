// The Train page's four live charts, a Streamlit v2 component mounted by pages/live/charts.py.
//
// Streamlit gives it only what to show: {run, axis, running, url} (and plotly.js, once, when
// this page lacks it). The charts come from the dashboard's live-charts route (app.py,
// trpo.live_feed): GET url?axis=...&have=<token> answers what this page lacks given the token
// of its last answer:
//   full:  every chart's data and layout, drawn with Plotly.react (uirevision keeps a zoom,
//          a pan and legend clicks when the run and x axis are the same);
//   delta: per trace, keep the first `keep` points and append the new ones, for the charts
//          that changed (the CG chart, small, is replaced whole);
//   same:  nothing is new: nothing is drawn.
// One request at a time: the first at once, then, while the run trains, one every POLL_MS
// (counted from the start of the last), the next only after the last answer is drawn; slower
// when the server says the run no longer trains, backing off after errors, paused while the
// tab is hidden, stopped when the component goes or the run is shown as ended (after one last
// request, for the last records). No Streamlit rerun is involved in an update.
// window.__trpoLiveCharts counts what happened (calls of this component, answers, sames,
// fulls, deltas, redraws, points received, points appended to the time series by deltas,
// errors, syncs), for tests and for the curious.

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
      answers: 0,
      sames: 0,
      fulls: 0,
      deltas: 0,
      redraws: 0,
      points: 0,
      appended: 0,
      errors: 0,
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
    enqueue(root, () => draw(state.gd, next.data, themed(root, next.layout), state)).catch(
      (error) => console.error("live charts: the CG chart could not be drawn", error),
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

// --- asking the route -----------------------------------------------------------------------

const POLL_MS = 500; // while the run trains
const SLOW_POLL_MS = 5000; // the page says it trains, the server says it ended (or not yet began)
const MAX_BACKOFF_MS = 10000; // after errors: 1 s, 2 s, 4 s, ... up to this
const TIMEOUT_MS = 15000; // a request unanswered this long is abandoned
const DETACHED_POLLS = 4; // polls out of the page before this poller gives up

class ClientError extends Error {} // a 4xx answer: what this page sent does not fit

// Updates are drawn one after the other, in order (the CG chart's timer uses the queue too).
function enqueue(root, work) {
  const done = (root.__queue || Promise.resolve()).then(work);
  root.__queue = done.catch(() => undefined);
  return done;
}

async function request(live) {
  const { url, axis } = live.spec;
  const have = live.have ? `&have=${encodeURIComponent(live.have)}` : "";
  live.controller = new AbortController();
  const timer = setTimeout(() => live.controller.abort(), TIMEOUT_MS);
  try {
    const response = await fetch(`${url}?axis=${encodeURIComponent(axis)}${have}`, {
      cache: "no-store",
      signal: live.controller.signal,
    });
    if (response.status >= 400 && response.status < 500) {
      throw new ClientError(`${response.status} ${await response.text()}`);
    }
    if (!response.ok) throw new Error(`${response.status} ${response.statusText}`);
    return await response.json();
  } finally {
    clearTimeout(timer);
    live.controller = null;
  }
}

// Draw an answer; false when it does not fit what this page holds (then ask for everything).
async function apply(root, live, answer) {
  stats().answers += 1;
  const held = live.held;
  if (answer.kind === "same" || answer.kind === "delta") {
    const base = answer.kind === "same" ? answer.n : answer.base;
    if (!held || held.epoch !== answer.epoch || held.n !== base) return false;
  }
  live.serverRunning = answer.running !== false;
  if (answer.kind === "same") {
    stats().sames += 1;
    live.have = answer.have;
    return true;
  }
  live.held = { epoch: answer.epoch, n: answer.n };
  live.have = answer.have;
  try {
    await enqueue(root, () =>
      answer.kind === "full" ? applyFull(root, answer) : applyDelta(root, answer),
    );
  } catch (error) {
    // a failed draw leaves the page unsure of what it holds: everything again
    live.held = null;
    live.have = null;
    throw error;
  }
  return true;
}

function schedule(root, live, delay) {
  clearTimeout(live.timer);
  live.timer = setTimeout(() => {
    live.timer = null;
    poll(root, live);
  }, delay);
}

function whenVisible(root, live) {
  if (live.waitingVisible) return;
  live.waitingVisible = true;
  const resume = () => {
    if (document.hidden) return;
    document.removeEventListener("visibilitychange", resume);
    live.waitingVisible = false;
    if (root.__live === live) schedule(root, live, 0);
  };
  document.addEventListener("visibilitychange", resume);
}

async function poll(root, live) {
  if (root.__live !== live) return; // another run or x axis, or gone
  if (!root.isConnected) {
    // out of the page: gone for good if still so after a few polls (Streamlit's cleanup
    // normally stops it first), moved while Streamlit redrew the page if not
    live.detached = (live.detached || 0) + 1;
    if (live.detached > DETACHED_POLLS) return stop(root);
    return schedule(root, live, POLL_MS);
  }
  live.detached = 0;
  if (document.hidden) return whenVisible(root, live); // nobody looks: catch up when shown
  live.busy = true;
  live.pending = false;
  const started = Date.now();
  let wait = POLL_MS;
  try {
    const answer = await request(live);
    if (root.__live !== live) return;
    if (!(await apply(root, live, answer))) {
      live.held = null;
      live.have = null;
      wait = 0;
    }
    live.failures = 0;
  } catch (error) {
    if (root.__live !== live) return;
    stats().errors += 1;
    live.failures += 1;
    if (error instanceof ClientError) live.have = null; // a token it refused: start again
    wait = Math.min(MAX_BACKOFF_MS, POLL_MS * 2 ** live.failures);
    console.warn("live charts: no update from the server", error);
  } finally {
    live.busy = false;
  }
  if (root.__live !== live) return;
  if (live.pending) schedule(root, live, 0);
  else if (live.spec.running) {
    if (!live.serverRunning && !live.failures) wait = SLOW_POLL_MS;
    schedule(root, live, Math.max(0, wait - (Date.now() - started)));
  } else if (live.failures) schedule(root, live, wait); // the last answer is still owed
}

function stop(root) {
  const live = root.__live;
  root.__live = null;
  if (!live) return;
  clearTimeout(live.timer);
  if (live.controller) live.controller.abort();
}

// What Streamlit asks to show: another run or x axis starts afresh (a full); the same one
// only notes whether it trains, and asks once more now (a run that ended: its last records).
function follow(root, spec) {
  const live = root.__live;
  if (live && live.spec.url === spec.url && live.spec.axis === spec.axis) {
    live.spec = spec;
    live.pending = true;
    live.serverRunning = true;
    if (!live.busy) schedule(root, live, 0);
    return;
  }
  stop(root);
  const fresh = { spec, have: null, held: null, busy: false, pending: false, failures: 0 };
  fresh.serverRunning = true;
  root.__live = fresh;
  schedule(root, fresh, 0);
}

// Streamlit calls the cleanup of a call when newer data overtakes it and when the component
// unmounts, possibly while React moves the element (or after the newer call): the charts are
// released only if, a moment later, the root is out of the page and no newer call came.
const RELEASE_AFTER_MS = 1000;

function release(root) {
  stop(root);
  if (root.__observer) root.__observer.disconnect();
  root.__observer = null;
  if (root.__charts && root.__charts.cg) clearTimeout(root.__charts.cg.timer);
  for (const name of CHARTS) {
    const gd = root.querySelector(`[data-chart="${name}"]`);
    if (gd && window.Plotly) window.Plotly.purge(gd);
  }
  root.__charts = null;
}

function cleanupFor(root, call) {
  return () => {
    setTimeout(() => {
      if (!root.isConnected && root.__call === call) release(root);
    }, RELEASE_AFTER_MS);
  };
}

function handle(root, data, setTriggerValue) {
  if (data.plotly_js && !window.Plotly) loadPlotly(data.plotly_js);
  if (!window.Plotly) {
    stats().syncs += 1;
    setTriggerValue("sync", { plotly: false }); // the rerun it starts sends plotly.js
    return;
  }
  follow(root, { run: data.run, axis: data.axis, running: Boolean(data.running), url: data.url });
  resizeWith(root);
}

export default function (component) {
  const { data, parentElement, setTriggerValue } = component;
  stats().calls += 1;
  const root = parentElement.querySelector(".trpo-live-charts");
  if (!root) return undefined;
  root.__call = (root.__call || 0) + 1;
  if (typeof data === "string") handle(root, JSON.parse(data), setTriggerValue);
  return cleanupFor(root, root.__call);
}
