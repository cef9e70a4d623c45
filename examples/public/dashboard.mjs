// The dashboard: no framework, one ES module. It keeps the browser's per-host connection
// limit in mind: one global stream for the runs list, and at most one per-run stream, for
// the run shown in the detail view.
//
// runcast/client is served by the example app from the package build (a self-contained
// module): it validates every frame, drops duplicates, reconnects and resumes by itself.
import { isTerminalStatus, progressOf, watchAll, watchRun } from "/runcast/client.js";

const MAX_LISTED = 30;
const MAX_LOG_LINES = 300;

const $ = (id) => document.getElementById(id);

/** Creates an element with a class, text and attributes; text goes through textContent, never HTML. */
function el(tag, className, text, attributes = {}) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  for (const [name, value] of Object.entries(attributes)) {
    if (value !== undefined) node.setAttribute(name, value);
  }
  return node;
}

// ---- the runs list: the global stream ---------------------------------------------------

/** Runs from GET /api/runs, by id: the global stream announces only active runs when it opens. */
let fromApi = new Map();
/** Runs the global stream still holds as active but the server no longer knows (it restarted). */
const gone = new Set();

const everyRun = watchAll("/api/stream", {
  onState: scheduleRender,
  onComplete: scheduleRender,
  // A fresh snapshot replaced the active runs: ask the API for the ones that ended meanwhile.
  onResync: () => refreshFromApi(),
  onStatus: (status) => {
    showConnection($("connection"), status);
    if (status === "live") refreshFromApi();
  },
  onError: (error) => console.warn("runcast:", error.message),
});

/** Reads GET /api/runs; runs the stream holds as active that the server does not know are gone. */
async function refreshFromApi() {
  const suspects = [...everyRun.state.keys()];
  let runs;
  try {
    const response = await fetch("/api/runs");
    if (!response.ok) return;
    ({ runs } = await response.json());
  } catch {
    return; // The server is away; the streams will say when it is back.
  }
  fromApi = new Map(runs.map((run) => [run.id, run]));
  for (const id of suspects) {
    const state = everyRun.state.get(id);
    if (state !== undefined && !isTerminalStatus(state.status) && !fromApi.has(id)) gone.add(id);
  }
  if (selected !== undefined && gone.has(selected.id)) showGone();
  scheduleRender();
}

/** Every run to list, newest first: the stream's state, unless the API knows the run ended. */
function listedRuns() {
  const runs = new Map();
  for (const [id, state] of fromApi) if (isTerminalStatus(state.status)) runs.set(id, state);
  for (const [id, state] of everyRun.state) {
    if (gone.has(id)) continue;
    const final = runs.get(id);
    if (final === undefined || isTerminalStatus(state.status)) runs.set(id, state);
  }
  return [...runs.values()].sort(
    (a, b) => String(b.created_at ?? "").localeCompare(String(a.created_at ?? "")) || b.id.localeCompare(a.id),
  );
}

let renderQueued = false;
function scheduleRender() {
  if (renderQueued) return;
  renderQueued = true;
  requestAnimationFrame(() => {
    renderQueued = false;
    renderRuns();
  });
}

function renderRuns() {
  const runs = listedRuns();
  const count = (test) => runs.filter(test).length;
  $("count-active").textContent = count((run) => !isTerminalStatus(run.status));
  $("count-completed").textContent = count((run) => run.status === "completed");
  $("count-failed").textContent = count((run) => run.status === "failed" || run.status === "cancelled");
  $("count-units").textContent = runs.reduce((sum, run) => sum + run.completed_units, 0);

  const list = $("runs");
  list.replaceChildren(...runs.slice(0, MAX_LISTED).map(runItem));
  $("runs-empty").hidden = runs.length > 0;
}

function runItem(run) {
  const item = el("li", "run", undefined, { "data-run-id": run.id, "data-status": run.status });
  if (selected?.id === run.id) item.classList.add("selected");
  const title = el("span", "title", run.name ?? run.id);
  title.append(" ", el("span", "muted mono", run.name === undefined ? "" : run.id));
  const sub = el("div", "sub");
  sub.append(progressBar(run), el("span", "units-count", unitsText(run)));
  item.append(title, badge(run.status), sub);
  item.addEventListener("click", () => select(run.id));
  return item;
}

function badge(status) {
  return el("span", "badge", status, { "data-status": status });
}

function progressBar(run) {
  const track = el("div", "progress");
  const bar = el("div", "bar", undefined, { "data-status": run.status });
  bar.style.width = `${Math.round((progressOf(run) ?? 0) * 100)}%`;
  track.append(bar);
  return track;
}

function unitsText(run) {
  const total = run.total_units === undefined ? "?" : run.total_units;
  const failed = Object.values(run.units ?? {}).filter((status) => status === "failed").length;
  return `${run.completed_units}/${total} units${failed > 0 ? ` · ${failed} failed` : ""}`;
}

function showConnection(pill, status) {
  const labels = { connecting: "connecting…", live: "live", reconnecting: "reconnecting…", closed: "closed" };
  pill.dataset.status = status;
  pill.textContent = labels[status] ?? status;
}

// ---- the detail view: one per-run stream ------------------------------------------------

/** The run shown: its id and its watcher. */
let selected;

function select(id) {
  if (selected?.id === id) return;
  selected?.watcher.close();
  history.replaceState(null, "", `#run=${encodeURIComponent(id)}`);
  $("detail").dataset.runId = id;
  $("detail-placeholder").hidden = true;
  $("detail-body").hidden = false;
  $("detail-notice").hidden = true;
  $("event-log").replaceChildren(el("li", "empty", "Waiting for events…"));
  const known = everyRun.state.get(id) ?? fromApi.get(id);
  if (known !== undefined) renderDetail(known);
  else renderDetail({ id, status: "pending", completed_units: 0 });

  selected = { id, watcher: undefined };
  const current = selected;
  current.watcher = watchRun(`/api/runs/${encodeURIComponent(id)}/stream`, {
    onState: (state) => renderDetail(state),
    onEvent: (event, info) => appendEvent(event, info.id),
    onComplete: (state) => {
      renderDetail(state);
      appendMarker(`Run ${state.status}${state.error ? `: ${state.error}` : ""}.`);
    },
    onResync: () => appendMarker("Resynced from a fresh snapshot: events in between may be missing from this log."),
    onStatus: (status) => {
      if (selected === current) showConnection($("detail-connection"), status);
    },
    onError: (error) => {
      if (error.code === "stream_refused") showGone();
      else console.warn("runcast:", error.message);
    },
  });
  scheduleRender();
}

function renderDetail(run) {
  $("detail-title").textContent = run.name ?? run.id;
  $("detail-id").textContent = run.id;
  const status = $("detail-status");
  status.textContent = run.status;
  status.dataset.status = run.status;
  const bar = $("detail-bar");
  bar.dataset.status = run.status;
  bar.style.width = `${Math.round((progressOf(run) ?? 0) * 100)}%`;
  const facts = [unitsText(run)];
  if (run.started_at) facts.push(`started ${clock(run.started_at)}`);
  if (run.finished_at) facts.push(`finished ${clock(run.finished_at)}`);
  if (run.error) facts.push(run.error);
  $("detail-meta").textContent = facts.join(" · ");
  const units = Object.entries(run.units ?? {});
  $("units").replaceChildren(
    ...units.map(([unit, state]) => {
      const item = el("li", "unit", undefined, { "data-unit": unit, "data-status": state });
      item.append(el("span", "name", unit), el("span", "state", state));
      return item;
    }),
  );
}

function appendEvent(event, id) {
  const line = el("li", undefined, undefined, { "data-event-id": id, "data-type": event.type });
  let detail = event.unit ?? "";
  if (typeof event.duration_ms === "number") detail += ` · ${(event.duration_ms / 1000).toFixed(1)} s`;
  if (typeof event.error === "string") detail += ` · ${event.error}`;
  line.append(
    el("span", "time", clock(event.ts)),
    el("span", "type", event.type, { "data-type": event.type }),
    el("span", "what", detail),
  );
  appendLine(line);
}

function appendMarker(text) {
  appendLine(el("li", "marker", text));
}

function appendLine(line) {
  const log = $("event-log");
  const atBottom = log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
  log.querySelector(".empty")?.remove();
  log.append(line);
  while (log.children.length > MAX_LOG_LINES) log.firstElementChild.remove();
  if (atBottom) log.scrollTop = log.scrollHeight;
}

function showGone() {
  selected?.watcher?.close();
  const notice = $("detail-notice");
  notice.textContent = "The server no longer knows this run (it restarted, or forgot old runs).";
  notice.hidden = false;
}

function clock(iso) {
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? "" : date.toLocaleTimeString([], { hour12: false });
}

// ---- controls ---------------------------------------------------------------------------------

$("start-run").addEventListener("click", async () => {
  try {
    const response = await fetch("/api/runs", { method: "POST" });
    if (response.ok) select((await response.json()).run.id);
  } catch (error) {
    console.warn("could not start a run:", error);
  }
});

const linked = /^#run=(.+)$/.exec(location.hash);
if (linked !== null) select(decodeURIComponent(linked[1]));
renderRuns();
