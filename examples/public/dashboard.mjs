// The dashboard: no framework, one ES module. It keeps the browser's per-host connection
// limit in mind: one global stream for the runs list, and at most one per-run stream, for
// the run shown in the detail view.
//
// runcast/client is served by the example app from the package build (runcast/client/browser,
// a self-contained module): it validates every frame, drops duplicates, reconnects and resumes
// by itself.
import { isTerminalStatus, progressOf, watchAll, watchRun } from "/runcast/client.js";

const MAX_LISTED = 30;
const MAX_LOG_LINES = 300;
/** Below this width the list and the detail are stacked (keep in step with dashboard.css). */
const STACKED = window.matchMedia("(max-width: 800px)");
/** How long a token request may take before it counts as failed (the watcher then tries again). */
const TOKEN_TIMEOUT_MS = 10_000;

const $ = (id) => document.getElementById(id);

// ---- stream tokens ------------------------------------------------------------------------

/** The token endpoint answered badly or not in time: shown on the connection pill. */
class TokenRequestFailed extends Error {}

/**
 * The `url` of a watcher: a function runcast/client calls for every connection and
 * reconnection. Each call asks the app for a fresh, short-lived stream token and answers the
 * stream's URL with `?token=` (the client adds `tags`, `from` and where to resume). When the
 * token expires the server ends the stream, and the next connection gets a new token.
 * A failed request rejects: the client reports `url_failed` and tries again with backoff.
 */
function withToken(path) {
  return async () => {
    let response;
    try {
      response = await fetch("/api/stream-token", {
        method: "POST",
        cache: "no-store",
        signal: AbortSignal.timeout(TOKEN_TIMEOUT_MS),
      });
    } catch (error) {
      // The server is away: a plain reconnect. A token request that hangs is the app's fault.
      if (error.name === "TimeoutError") throw new TokenRequestFailed("the token request timed out");
      throw error;
    }
    if (!response.ok) throw new TokenRequestFailed(`the token request answered HTTP ${response.status}`);
    const body = await response.json().catch(() => undefined);
    if (typeof body?.token !== "string") throw new TokenRequestFailed("the token request answered no token");
    return `${path}?token=${encodeURIComponent(body.token)}`;
  };
}

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

/** Sets text only when it changed, so an unchanged row is not touched at all. */
function setText(node, text) {
  const value = String(text);
  if (node.textContent !== value) node.textContent = value;
}

function setAttr(node, name, value) {
  if (value === undefined) node.removeAttribute(name);
  else if (node.getAttribute(name) !== String(value)) node.setAttribute(name, String(value));
}

// ---- the runs the page lists --------------------------------------------------------------

/** Runs from GET /api/runs, by id: the global stream announces only active runs when it opens. */
let fromApi = new Map();
/**
 * Runs the page knew before the server last said what it holds, and the server no longer
 * knows: a restarted server's old runs, active or finished. A new state of the run lifts it.
 */
const gone = new Set();

/**
 * The tag the list is narrowed to, or "" for every run. The server does the narrowing: the
 * global stream is opened with `?tags=` and GET /api/runs with the same filter, so the page
 * never receives the other teams' runs.
 */
let tagFilter = "";

/** Opens the global stream for the runs the list shows. */
function watchListed() {
  return watchAll(
    withToken("/api/stream"),
    {
      onState: (state) => {
        gone.delete(state.id);
        scheduleRender();
      },
      onComplete: (state, info) => {
        gone.delete(state.id);
        if (!info.snapshot) announce(`${state.name ?? state.id} ${state.status}.`);
        scheduleRender();
      },
      // A fresh snapshot: what the page listed may be another server's. Ask what this one holds.
      onResync: () => refreshFromApi(),
      onStatus: (status) => {
        showConnection($("connection"), status);
        if (status === "live") refreshFromApi();
      },
      onError: (error) => {
        showProblem($("connection"), error);
        console.warn("runcast:", error.message);
      },
    },
    tagFilter === "" ? {} : { tags: [tagFilter] },
  );
}

let everyRun = watchListed();

$("tag-filter").addEventListener("change", (event) => {
  tagFilter = event.target.value;
  everyRun.close();
  fromApi = new Map();
  gone.clear();
  everyRun = watchListed();
  scheduleRender();
});

/**
 * Reads GET /api/runs and makes the list what the server holds: every run the page knew
 * before asking that the server does not list is dropped. After a server restart that is
 * each of the old server's runs, finished ones included.
 */
async function refreshFromApi() {
  const known = new Set([...everyRun.state.keys(), ...fromApi.keys()]);
  const filter = tagFilter;
  let runs;
  try {
    const response = await fetch(filter === "" ? "/api/runs" : `/api/runs?tags=${encodeURIComponent(filter)}`);
    if (!response.ok) return;
    ({ runs } = await response.json());
  } catch {
    return; // The server is away; the streams will say when it is back.
  }
  if (filter !== tagFilter) return; // The list was narrowed otherwise meanwhile.
  fromApi = new Map(runs.map((run) => [run.id, run]));
  for (const id of known) if (!fromApi.has(id)) gone.add(id);
  if (selected !== undefined && gone.has(selected.id)) showGone();
  scheduleRender();
}

/** Every run to list, newest first: the stream's state, unless the API knows the run ended. */
function listedRuns() {
  const runs = new Map();
  for (const [id, state] of fromApi) if (isTerminalStatus(state.status) && !gone.has(id)) runs.set(id, state);
  for (const [id, state] of everyRun.state) {
    if (gone.has(id)) continue;
    const final = runs.get(id);
    if (final === undefined || isTerminalStatus(state.status)) runs.set(id, state);
  }
  return [...runs.values()].sort(
    (a, b) => String(b.created_at ?? "").localeCompare(String(a.created_at ?? "")) || b.id.localeCompare(a.id),
  );
}

// ---- the runs list: one row per run, kept and updated in place --------------------------

/** The list's rows by run id. A row lives as long as its run is listed, so a press on it is never lost. */
const rows = new Map();

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
  setText(
    $("count-active"),
    count((run) => !isTerminalStatus(run.status)),
  );
  setText(
    $("count-completed"),
    count((run) => run.status === "completed"),
  );
  setText(
    $("count-failed"),
    count((run) => run.status === "failed" || run.status === "cancelled"),
  );
  setText(
    $("count-units"),
    runs.reduce((sum, run) => sum + run.completed_units, 0),
  );

  const shown = runs.slice(0, MAX_LISTED);
  const ids = new Set(shown.map((run) => run.id));
  for (const [id, row] of rows) {
    if (!ids.has(id)) {
      row.item.remove();
      rows.delete(id);
    }
  }
  const list = $("runs");
  let expected = list.firstElementChild;
  for (const run of shown) {
    let row = rows.get(run.id);
    if (row === undefined) {
      row = createRow(run.id);
      rows.set(run.id, row);
    }
    updateRow(row, run);
    // Moves only rows out of place: a new run goes in above the others, which stay where they are.
    if (row.item === expected) expected = expected.nextElementSibling;
    else list.insertBefore(row.item, expected);
  }
  $("runs-empty").hidden = runs.length > 0;
}

/**
 * One row: a button that opens the run (its accessible name is the run's name; a pseudo
 * element stretches it over the whole row), the status badge and a progress bar beside it.
 */
function createRow(id) {
  const item = el("li", "run", undefined, { "data-run-id": id });
  const open = el("button", "open", undefined, { type: "button", "aria-controls": "detail" });
  const title = el("span", "title");
  const runId = el("span", "muted mono run-id", id);
  open.append(title, " ", runId);
  open.addEventListener("click", () => select(id, { byUser: true }));
  const badge = el("span", "badge");
  const progress = progressBar();
  const units = el("span", "units-count");
  const tags = el("span", "tags");
  const sub = el("div", "sub");
  sub.append(progress.track, units, tags);
  item.append(open, badge, sub);
  return { item, open, title, runId, badge, progress, units, tags };
}

function updateRow(row, run) {
  setAttr(row.item, "data-status", run.status);
  row.item.classList.toggle("selected", selected?.id === run.id);
  setAttr(row.open, "aria-current", selected?.id === run.id ? "true" : undefined);
  setText(row.title, run.name ?? run.id);
  row.runId.hidden = run.name === undefined;
  setText(row.badge, run.status);
  setAttr(row.badge, "data-status", run.status);
  updateProgress(row.progress, run, `${run.name ?? run.id} progress`);
  setText(row.units, unitsText(run));
  setText(row.tags, Array.isArray(run.tags) ? run.tags.join(" ") : "");
}

/** A progress bar with the progressbar role: its value is completed units out of the total. */
function progressBar(extraClass = "") {
  const track = el("div", `progress ${extraClass}`.trim(), undefined, { role: "progressbar", "aria-valuemin": "0" });
  const bar = el("div", "bar");
  track.append(bar);
  return { track, bar };
}

function updateProgress({ track, bar }, run, label) {
  setAttr(track, "aria-label", label);
  const known = run.total_units !== undefined;
  setAttr(track, "aria-valuemax", known ? run.total_units : undefined);
  setAttr(track, "aria-valuenow", known ? run.completed_units : undefined);
  setAttr(track, "aria-valuetext", known ? `${run.completed_units} of ${run.total_units} units` : undefined);
  setAttr(bar, "data-status", run.status);
  const width = `${Math.round((progressOf(run) ?? 0) * 100)}%`;
  if (bar.style.width !== width) bar.style.width = width;
}

function unitsText(run) {
  const total = run.total_units === undefined ? "?" : run.total_units;
  const failed = Object.values(run.units ?? {}).filter((status) => status === "failed").length;
  return `${run.completed_units}/${total} units${failed > 0 ? ` · ${failed} failed` : ""}`;
}

/**
 * A connection pill: the watcher's status, and, while it retries because the token request
 * failed, that reason (`data-problem="token"`), so a broken token endpoint is never a silent hang.
 */
function showConnection(pill, status = pill.dataset.status) {
  const labels = { connecting: "connecting…", live: "live", reconnecting: "reconnecting…", closed: "closed" };
  if (status === "live" || status === "closed") delete pill.dataset.problem;
  const tokenFailed = pill.dataset.problem === "token";
  pill.dataset.status = status;
  setText(pill, tokenFailed ? "no stream token, retrying…" : (labels[status] ?? status));
  setAttr(
    pill,
    "title",
    tokenFailed ? "The page could not get a stream token (POST /api/stream-token); trying again" : undefined,
  );
}

/** A watcher's error, on its pill: the next status says the rest. */
function showProblem(pill, error) {
  if (error.code === "url_failed" && error.cause instanceof TokenRequestFailed) pill.dataset.problem = "token";
  else delete pill.dataset.problem;
  showConnection(pill);
}

/** Tells screen readers one thing that matters (a run finished) through the page's one live region. */
function announce(text) {
  const region = $("announcer");
  // A new node each time, so the same words twice are announced twice.
  region.replaceChildren(el("span", undefined, text));
}

// ---- the detail view: one per-run stream ------------------------------------------------

/** The run shown: its id and its watcher. */
let selected;

/**
 * Shows a run in the detail view. `byUser`: the user asked for it (a click or a key), so on a
 * narrow screen, where the detail sits below the list, the page takes them there.
 */
function select(id, { byUser = false } = {}) {
  if (selected?.id !== id) {
    selected?.watcher.close();
    history.replaceState(null, "", `#run=${encodeURIComponent(id)}`);
    $("detail").dataset.runId = id;
    $("detail-placeholder").hidden = true;
    $("detail-body").hidden = false;
    $("detail-notice").hidden = true;
    $("event-log").replaceChildren(el("li", "empty", "Waiting for events…"));
    detailStart = undefined;
    renderDetail(everyRun.state.get(id) ?? fromApi.get(id) ?? { id, status: "pending", completed_units: 0 });
    selected = { id, watcher: openRunWatcher(id) };
    scheduleRender();
  }
  if (byUser && STACKED.matches) {
    $("detail").scrollIntoView({ block: "start" });
    $("detail-title").focus({ preventScroll: true });
  }
}

/**
 * Opens the per-run stream behind the detail view, from the run's first envelope
 * (`from: "start"`): a run opened late, or finished, shows its whole event log. The handlers
 * render into the view while it is the one shown.
 */
function openRunWatcher(id) {
  const shown = () => selected?.id === id;
  return watchRun(
    withToken(`/api/runs/${encodeURIComponent(id)}/stream`),
    {
      onState: (state) => shown() && renderDetail(state),
      onEvent: (event, info) => shown() && appendEvent(event, info.id),
      onComplete: (state) => {
        if (!shown()) return;
        renderDetail(state);
        appendMarker(`Run ${state.status}${state.error ? `: ${state.error}` : ""}.`);
      },
      onResync: (_state, { reason }) =>
        shown() &&
        appendMarker(
          reason === "trimmed"
            ? "The server keeps only this run's newest events: older ones are not shown."
            : "Resynced from a fresh snapshot: events in between may be missing from this log.",
        ),
      onStatus: (status) => shown() && showConnection($("detail-connection"), status),
      onError: (error) => {
        if (!shown()) return;
        if (error.code === "stream_refused") showRefused(error.status);
        else {
          showProblem($("detail-connection"), error);
          console.warn("runcast:", error.message);
        }
      },
    },
    { from: "start" },
  );
}

const detailProgress = { track: $("detail-progress"), bar: $("detail-bar") };

/** When the open run started, from its own state (the log's first state has it). */
let detailStart;

function renderDetail(run) {
  detailStart = run.started_at ?? run.created_at ?? detailStart;
  setText($("detail-title"), run.name ?? run.id);
  setText($("detail-id"), run.id);
  const status = $("detail-status");
  setText(status, run.status);
  status.dataset.status = run.status;
  updateProgress(detailProgress, run, "Progress");
  const facts = [unitsText(run)];
  if (run.started_at) facts.push(`started ${clock(run.started_at)}`);
  if (run.finished_at) facts.push(`finished ${clock(run.finished_at)}`);
  if (run.error) facts.push(run.error);
  setText($("detail-meta"), facts.join(" · "));
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
  const time = el("span", "time", clock(event.ts));
  const since = sinceStart(event.ts);
  if (since !== "") time.append(el("span", "since", since));
  line.append(time, el("span", "type", event.type, { "data-type": event.type }), el("span", "what", detail));
  appendLine(line);
}

/** How long after the open run's start `iso` is (`+1:05`), or "" when either is unknown. */
function sinceStart(iso) {
  const run = selected === undefined ? undefined : (everyRun.state.get(selected.id) ?? fromApi.get(selected.id));
  const start = Date.parse(detailStart ?? run?.started_at ?? run?.created_at ?? "");
  const at = Date.parse(iso);
  if (Number.isNaN(start) || Number.isNaN(at) || at < start) return "";
  const seconds = Math.round((at - start) / 1000);
  return `+${Math.floor(seconds / 60)}:${String(seconds % 60).padStart(2, "0")}`;
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

const GONE = "The server no longer knows this run (it restarted, or forgot old runs).";

function showGone(text = GONE) {
  selected?.watcher?.close();
  const notice = $("detail-notice");
  notice.textContent = text;
  notice.hidden = false;
}

/**
 * The server refused the run's stream. Under the token's tags a run that does not exist is
 * refused (403) like another team's, so that one answer covers both.
 */
function showRefused(status) {
  const refusals = {
    401: "The server refused the stream token.",
    403: "Not yours to see: the run is another team's, or the server no longer knows this run (it restarted).",
  };
  showGone(refusals[status] ?? GONE);
}

function clock(iso) {
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? "" : date.toLocaleTimeString([], { hour12: false });
}

// ---- controls ---------------------------------------------------------------------------------

$("start-run").addEventListener("click", async () => {
  try {
    const response = await fetch("/api/runs", { method: "POST" });
    if (response.ok) select((await response.json()).run.id, { byUser: true });
  } catch (error) {
    console.warn("could not start a run:", error);
  }
});

$("back-to-runs").addEventListener("click", () => {
  const row = selected === undefined ? undefined : rows.get(selected.id);
  (row?.open ?? $("runs-title")).focus();
  (row?.item ?? $("runs-title")).scrollIntoView({ block: "nearest" });
});

const linked = /^#run=(.+)$/.exec(location.hash);
if (linked !== null) select(decodeURIComponent(linked[1]));
renderRuns();
