/**
 * runcast/client: watches runcast streams from a browser or from Node, over `EventSource`.
 *
 * It does what every page consuming these streams otherwise rewrites: validates each frame
 * with the same zod schemas the server uses, keeps the current state, drops envelopes it
 * has already delivered, reports the server's `resync` frames (a fresh snapshot instead of
 * the missed frames), and stops for good once a run is complete.
 *
 * Browser-safe: imports nothing but the schemas (and so zod); no Node built-ins, no Express.
 *
 * @packageDocumentation
 */
import {
  describeIssues,
  isTerminalStatus,
  type RunEvent,
  RunEventSchema,
  type RunState,
  RunStateSchema,
} from "../schema";

export type { RunEvent, RunState, RunStatus } from "../schema";
export { isTerminalStatus } from "../schema";

/** Delay before the first attempt to reopen a stream the `EventSource` gave up on, in ms. */
export const DEFAULT_RETRY_MS = 1_000;
/** Longest delay between attempts to reopen a failed stream, in ms. */
export const DEFAULT_MAX_RETRY_MS = 30_000;
/** How many finished runs {@link watchAll} keeps in its `state` map. */
export const DEFAULT_MAX_FINISHED_RUNS = 100;
/** How many recent envelope ids a watcher remembers to drop duplicates. */
const DEDUPE_WINDOW = 10_000;
/** How long a status probe of a failed stream may take before it counts as a plain failure, in ms. */
const PROBE_TIMEOUT_MS = 10_000;

/** `EventSource.readyState` values, spelled out because a custom constructor may lack the statics. */
const CONNECTING = 0;
const CLOSED = 2;

/**
 * A watcher's connection state:
 * - `connecting`: opening the stream for the first time;
 * - `live`: the stream is open and frames flow;
 * - `reconnecting`: the stream dropped or failed; the watcher is getting it back by itself;
 * - `closed`: for good, after `close()`, after a run's `complete`, or when the server refused the stream.
 */
export type WatchStatus = "connecting" | "live" | "reconnecting" | "closed";

/** The part of the `EventSource` API the client uses; the browser's and the `eventsource` package's both fit. */
export interface EventSourceLike {
  readonly readyState: number;
  close(): void;
  addEventListener(type: string, listener: (event: MessageEvent) => void): void;
}

/** An `EventSource` constructor: the global one, or e.g. `EventSource` from the `eventsource` package in Node. */
export type EventSourceConstructor = new (url: string, init?: { withCredentials?: boolean }) => EventSourceLike;

/** The part of the Fetch API the status probe uses; the global `fetch` of browsers and Node 20 fits. */
export type FetchLike = (
  url: string,
  init: {
    headers: Record<string, string>;
    credentials: "include" | "same-origin";
    cache: "no-store";
    signal: AbortSignal;
  },
) => Promise<{ status: number; headers: { get(name: string): string | null }; json(): Promise<unknown> }>;

/** What a frame handler is told besides the data. */
export interface FrameInfo {
  /** The envelope id the frame carried (its `id:` line), or `undefined`. */
  id: string | undefined;
  /**
   * `true` for a snapshot `state` frame: the state the server read when the stream opened
   * (the leading `state` frames of a connection that did not ask to resume) or right after a
   * `resync` frame, rather than a state change from the run's log.
   */
  snapshot: boolean;
}

/**
 * Why the server could not resume a stream exactly (the `reason` of its `resync` frame):
 * `trimmed` when its log no longer reaches back to the point asked for, `unknown_id` when it
 * does not know the id the client resumed from (a restarted source, another deployment).
 */
export type ResyncReason = "trimmed" | "unknown_id";

/** What {@link RunHandlers.onResync} is told. */
export interface ResyncInfo {
  /** The reason the server's `resync` frame gave. */
  reason: ResyncReason;
}

/** Handlers both watchers take; every one is optional. */
export interface WatchHandlers {
  /** A run's state changed (live) or was read afresh (snapshot); receives the merged state. */
  onState?: (state: RunState, info: FrameInfo) => void;
  /** Something happened in a run. */
  onEvent?: (event: RunEvent, info: FrameInfo) => void;
  /** A run ended; receives its final, merged state. */
  onComplete?: (state: RunState, info: FrameInfo) => void;
  /** The connection state changed. */
  onStatus?: (status: WatchStatus) => void;
  /** A frame was invalid (and skipped), or the stream failed or was refused. */
  onError?: (error: WatchError) => void;
}

/** Handlers of {@link watchRun}. */
export interface RunHandlers extends WatchHandlers {
  /**
   * The server sent a `resync` frame: it could not resume the stream exactly (see
   * {@link ResyncReason}), so a fresh snapshot replaced the run's state and events in between
   * may be missing. Called once the snapshot is applied (after its `onState`), and on nothing
   * but that frame. With `from: "start"` it also means the run's history is incomplete.
   */
  onResync?: (state: RunState, info: ResyncInfo) => void;
}

/** What {@link AllRunsHandlers.onResync} is told. */
export interface AllRunsResyncInfo extends ResyncInfo {
  /** Active runs that the snapshot no longer lists (they ended while the watcher was away), removed from `state`. */
  removed: string[];
}

/** Handlers of {@link watchAll}. */
export interface AllRunsHandlers extends WatchHandlers {
  /**
   * The server sent a `resync` frame: it could not resume the stream exactly, so a fresh
   * snapshot of the active runs followed; `runs` is the watcher's map once the snapshot is
   * applied (active runs it no longer lists are removed); events in between may be missing.
   * Called when the snapshot ends: at its last frame (the one carrying the cursor), or at the
   * next frame of any kind (a heartbeat at the latest) for a snapshot without one.
   */
  onResync?: (runs: ReadonlyMap<string, RunState>, info: AllRunsResyncInfo) => void;
}

/** Options of both watchers; all optional. */
export interface WatchOptions {
  /**
   * The `EventSource` constructor. Defaults to `globalThis.EventSource` (browsers); in Node 20
   * pass the `eventsource` package's.
   */
  EventSource?: EventSourceConstructor;
  /** Sends cookies on cross-origin streams. @default false */
  withCredentials?: boolean;
  /** Only these event types (`?types=`); `state` and `complete` frames always arrive. @default every type */
  types?: readonly string[];
  /**
   * First delay before reopening a stream the `EventSource` gave up on (an HTTP error such as
   * 503 while the server shuts down); it doubles with each failure in a row. Drops the
   * `EventSource` recovers from itself use the server's `retry:` delay. @default 1000
   */
  retryMs?: number;
  /** Longest delay between reopening attempts, in ms. @default 30000 */
  maxRetryMs?: number;
  /**
   * How to learn the HTTP status of a stream the `EventSource` gave up on without telling it
   * (browsers never do): one `GET` of the stream's URL, dropped as soon as its head (or, for an
   * error, its JSON body) has arrived. With it, a 404 or 403 closes the watcher with
   * `stream_refused` in a browser too, instead of retrying forever. `false` turns the probe off.
   * @default globalThis.fetch
   */
  fetch?: FetchLike | false;
}

/** Options of {@link watchRun}. */
export interface RunOptions extends WatchOptions {
  /**
   * `"start"` asks for the run's whole log (`?from=start`): every envelope from its first
   * `state`, through `onState` and `onEvent` in order, then live frames. Reconnects resume
   * after the last id as usual (the server lets `Last-Event-ID` win over `from=start`).
   * Where the server's log no longer starts at the run's beginning, a `resync` frame and a
   * snapshot arrive instead (`onResync`). @default undefined: the run's current state, then live frames
   */
  from?: "start";
}

/** Options of {@link watchAll}. */
export interface AllRunsOptions extends WatchOptions {
  /** How many finished runs stay in `state` (the oldest go first). @default 100 */
  maxFinishedRuns?: number;
}

/** What {@link watchRun} returns. */
export interface RunWatcher {
  /** The run's current state, merged from every state frame; `undefined` before the first. */
  readonly state: RunState | undefined;
  /** The connection state. */
  readonly status: WatchStatus;
  /** Stops everything: closes the stream and cancels any pending reconnect. Idempotent. */
  close(): void;
}

/** What {@link watchAll} returns. */
export interface AllRunsWatcher {
  /**
   * The runs known to the watcher by id: every active run, plus finished runs seen completing
   * (up to `maxFinishedRuns`) with their final state. Read-only; it changes as frames arrive.
   */
  readonly state: ReadonlyMap<string, RunState>;
  /** The connection state. */
  readonly status: WatchStatus;
  /** Stops everything: closes the stream and cancels any pending reconnect. Idempotent. */
  close(): void;
}

/** Why {@link WatchHandlers.onError} was called. */
export type WatchErrorCode =
  /** A frame was not valid JSON, failed the schema, or named another run; it was skipped. */
  | "invalid_frame"
  /** The `EventSource` gave up on the stream (an HTTP error, or an unknown reason in browsers); the watcher reopens it. */
  | "stream_failed"
  /** The server refused the stream for good (e.g. 404 `run_not_found`, 403); the watcher closed. */
  | "stream_refused";

/** An error passed to {@link WatchHandlers.onError}. */
export class WatchError extends Error {
  override readonly name = "WatchError";
  /** What went wrong. */
  readonly code: WatchErrorCode;
  /**
   * The HTTP status, when known: the `eventsource` package tells it; in browsers the watcher
   * asks the server again (see {@link WatchOptions.fetch}).
   */
  readonly status: number | undefined;
  /** The server's error code from its JSON error body (e.g. `run_not_found`), when the status probe read one. */
  readonly serverCode: string | undefined;
  /** The skipped frame, for `invalid_frame`. */
  readonly frame: { type: string; id: string | undefined; data: string } | undefined;

  constructor(
    code: WatchErrorCode,
    message: string,
    details: {
      status?: number;
      serverCode?: string;
      frame?: { type: string; id: string | undefined; data: string };
    } = {},
  ) {
    super(message);
    this.code = code;
    this.status = details.status;
    this.serverCode = details.serverCode;
    this.frame = details.frame;
  }
}

/** A run's progress, `completed_units / total_units` between 0 and 1, or `undefined` without a total. */
export function progressOf(state: RunState): number | undefined {
  if (state.total_units === undefined || state.total_units <= 0) return undefined;
  return Math.min(1, Math.max(0, state.completed_units / state.total_units));
}

/**
 * Watches one run: `url` is its stream, e.g. `/api/runs/run_123/stream`. The first frame
 * gives the run's state; then its events and state changes; on `complete` the watcher
 * closes itself, so nothing more is requested.
 *
 * @param url - The run's stream URL (relative URLs work in browsers).
 * @param handlers - What to call as frames arrive; see {@link RunHandlers}.
 * @param options - See {@link RunOptions}.
 */
export function watchRun(url: string, handlers: RunHandlers = {}, options: RunOptions = {}): RunWatcher {
  const watch = new Watch(url, handlers, options, null);
  return {
    get state() {
      return watch.run;
    },
    get status() {
      return watch.status;
    },
    close: () => watch.close(),
  };
}

/**
 * Watches every run: `url` is the global stream, e.g. `/api/stream`. It starts with a
 * snapshot `state` per active run, then every run's frames; it stays open when runs complete.
 *
 * @param url - The global stream URL (relative URLs work in browsers).
 * @param handlers - What to call as frames arrive; see {@link AllRunsHandlers}.
 * @param options - See {@link AllRunsOptions}.
 */
export function watchAll(url: string, handlers: AllRunsHandlers = {}, options: AllRunsOptions = {}): AllRunsWatcher {
  const watch = new Watch(url, handlers, options, {
    runs: new Map(),
    finished: [],
    max: options.maxFinishedRuns ?? DEFAULT_MAX_FINISHED_RUNS,
  });
  return {
    get state() {
      return watch.runs;
    },
    get status() {
      return watch.status;
    },
    close: () => watch.close(),
  };
}

/** What a global watcher keeps. */
interface RunsMap {
  runs: Map<string, RunState>;
  /** Finished run ids, oldest first, to forget beyond `max`. */
  finished: string[];
  max: number;
}

/**
 * A snapshot being received: the runs it lists so far, and the `resync` reason when a
 * `resync` frame announced it (none for the snapshot a fresh connection starts with).
 */
interface SnapshotInProgress {
  runs: Set<string>;
  reason: ResyncReason | undefined;
}

const RESYNC_REASONS: readonly string[] = ["trimmed", "unknown_id"] satisfies ResyncReason[];

function appendQuery(url: string, params: ReadonlyArray<[string, string | undefined]>): string {
  const parts = params
    .filter((entry): entry is [string, string] => entry[1] !== undefined && entry[1] !== "")
    .map(([key, value]) => `${encodeURIComponent(key)}=${encodeURIComponent(value)}`);
  if (parts.length === 0) return url;
  const hash = url.indexOf("#");
  const base = hash < 0 ? url : url.slice(0, hash);
  return `${base}${base.includes("?") ? "&" : "?"}${parts.join("&")}${hash < 0 ? "" : url.slice(hash)}`;
}

/** The HTTP status an error event carries, when the `EventSource` implementation tells it. */
function statusOf(event: unknown): number | undefined {
  const code = typeof event === "object" && event !== null ? (event as { code?: unknown }).code : undefined;
  return typeof code === "number" && code > 0 ? code : undefined;
}

/** What a status probe learned of a stream's URL. */
interface Probed {
  status: number;
  serverCode: string | undefined;
}

/**
 * Asks the server for the status of a stream's URL, as the `EventSource` that gave up on it
 * would have seen it, and reads the error code of a JSON error body. The request is aborted as
 * soon as that is known (a 200 stream is not read). `undefined` when the server cannot be
 * reached or does not answer within {@link PROBE_TIMEOUT_MS}.
 */
async function probeStatus(url: string, fetchImpl: FetchLike, withCredentials: boolean): Promise<Probed | undefined> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), PROBE_TIMEOUT_MS);
  try {
    const response = await fetchImpl(url, {
      headers: { Accept: "text/event-stream" },
      credentials: withCredentials ? "include" : "same-origin",
      cache: "no-store",
      signal: controller.signal,
    });
    let serverCode: string | undefined;
    if (response.status >= 400 && (response.headers.get("content-type") ?? "").includes("json")) {
      const body = await response.json().catch(() => undefined);
      const code = (body as { error?: { code?: unknown } } | undefined)?.error?.code;
      if (typeof code === "string") serverCode = code;
    }
    return { status: response.status, serverCode };
  } catch {
    return undefined;
  } finally {
    clearTimeout(timer);
    controller.abort();
  }
}

/** A status that says reopening the stream would not help: 204 (nothing more to send), and 4xx but 408 and 429. */
function isRefusal(status: number | undefined): boolean {
  return status === 204 || (status !== undefined && status >= 400 && status < 500 && status !== 408 && status !== 429);
}

/**
 * One watcher: owns the `EventSource`, classifies and validates frames, remembers ids, and
 * keeps the state (one run's, or a map of runs when `all` is set).
 */
class Watch {
  status: WatchStatus = "connecting";
  run: RunState | undefined;
  readonly #url: string;
  readonly #handlers: RunHandlers & AllRunsHandlers;
  readonly #options: WatchOptions;
  readonly #EventSource: EventSourceConstructor;
  readonly #all: RunsMap | null;
  #source: EventSourceLike | undefined;
  /** The URL the current (or last) `EventSource` opened. */
  #sourceUrl = "";
  #retryTimer: ReturnType<typeof setTimeout> | undefined;
  #failures = 0;
  /** Streams opened so far. */
  #opens = 0;
  /** The snapshot being received, if the current connection is inside one. */
  #snapshot: SnapshotInProgress | undefined;
  /** `lastEventId` of the previous message of the current `EventSource`, to tell which frames carry an `id:`. */
  #previousLastEventId = "";
  /** The newest id received: where a reopened stream resumes. */
  #resumeId: string | undefined;
  /** Recent envelope ids delivered, oldest first (a Set keeps insertion order). */
  #seen = new Set<string>();
  #closed = false;

  readonly #from: "start" | undefined;

  constructor(
    url: string,
    handlers: RunHandlers | AllRunsHandlers,
    options: WatchOptions & { from?: "start" },
    all: RunsMap | null,
  ) {
    this.#from = options.from;
    this.#url = appendQuery(url, [
      ["types", options.types?.join(",")],
      ["from", options.from],
    ]);
    this.#handlers = handlers as RunHandlers & AllRunsHandlers;
    this.#options = options;
    this.#all = all;
    const EventSourceImpl =
      options.EventSource ?? (globalThis as { EventSource?: EventSourceConstructor }).EventSource ?? undefined;
    if (EventSourceImpl === undefined) {
      throw new TypeError(
        "runcast/client: no global EventSource here; pass one as options.EventSource (in Node: the eventsource package)",
      );
    }
    this.#EventSource = EventSourceImpl;
    this.#open();
  }

  get runs(): ReadonlyMap<string, RunState> {
    return this.#all?.runs ?? new Map();
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#retryTimer !== undefined) clearTimeout(this.#retryTimer);
    this.#retryTimer = undefined;
    this.#source?.close();
    this.#source = undefined;
    this.#setStatus("closed");
  }

  #open(): void {
    // A stream reopened after a failure resumes where the last one stopped; the query
    // parameter stands in for the Last-Event-ID header a new EventSource cannot send.
    const url = this.#opens === 0 ? this.#url : appendQuery(this.#url, [["lastEventId", this.#resumeId]]);
    const source = new this.#EventSource(url, { withCredentials: this.#options.withCredentials === true });
    this.#source = source;
    this.#sourceUrl = url;
    this.#previousLastEventId = "";
    const mine = (listener: (event: MessageEvent) => void) => (event: MessageEvent) => {
      if (!this.#closed && this.#source === source) listener(event);
    };
    source.addEventListener(
      "open",
      mine(() => this.#onOpen()),
    );
    source.addEventListener(
      "error",
      mine((event) => this.#onFailure(source, event)),
    );
    for (const type of ["state", "event", "complete", "resync"] as const) {
      source.addEventListener(
        type,
        mine((event) => this.#onFrame(type, event)),
      );
    }
  }

  #onOpen(): void {
    this.#opens++;
    this.#failures = 0;
    // A connection that asks to resume (the EventSource sends the newest id it got, or our
    // query parameter carries it; or `from=start`) starts with the log's own frames, and
    // with a snapshot only after a `resync` frame. One that does not starts with a snapshot.
    const resumes = this.#resumeId !== undefined || this.#from === "start";
    this.#snapshot = resumes ? undefined : { runs: new Set(), reason: undefined };
    this.#setStatus("live");
  }

  #onFailure(source: EventSourceLike, event: MessageEvent): void {
    this.#snapshot = undefined;
    if (source.readyState === CONNECTING) {
      // A drop the EventSource recovers from itself, after the server's `retry:` delay.
      this.#setStatus("reconnecting");
      return;
    }
    if (source.readyState !== CLOSED) return;
    // The EventSource gave up: an HTTP error, a 204, a wrong content type, or no server.
    const status = statusOf(event);
    source.close();
    this.#source = undefined;
    const fetchImpl = this.#options.fetch ?? (globalThis as { fetch?: FetchLike }).fetch;
    if (status !== undefined || fetchImpl === undefined || fetchImpl === false) {
      this.#afterFailure(status, undefined);
      return;
    }
    // A browser's EventSource does not say why: ask the server once more.
    this.#setStatus("reconnecting");
    void probeStatus(this.#sourceUrl, fetchImpl, this.#options.withCredentials === true).then((probed) => {
      // A 200 now: the failure was passing (or the answer was not an event stream).
      if (!this.#closed) this.#afterFailure(probed?.status === 200 ? undefined : probed?.status, probed?.serverCode);
    });
  }

  /** Closes the watcher on a refusal, or schedules the next attempt with backoff. */
  #afterFailure(status: number | undefined, serverCode: string | undefined): void {
    if (isRefusal(status)) {
      const reason = serverCode === undefined ? "" : `: ${serverCode}`;
      this.#error(
        new WatchError("stream_refused", `the server refused the stream (HTTP ${status}${reason})`, {
          status,
          ...(serverCode === undefined ? {} : { serverCode }),
        }),
      );
      this.close();
      return;
    }
    this.#failures++;
    const base = this.#options.retryMs ?? DEFAULT_RETRY_MS;
    const max = this.#options.maxRetryMs ?? DEFAULT_MAX_RETRY_MS;
    const delay = Math.min(max, base * 2 ** Math.min(this.#failures - 1, 20));
    this.#error(
      new WatchError(
        "stream_failed",
        `the stream failed${status === undefined ? "" : ` (HTTP ${status})`}; reopening it`,
        status === undefined ? {} : { status },
      ),
    );
    this.#setStatus("reconnecting");
    // Jitter, so that many pages do not come back in the same instant after a restart.
    this.#retryTimer = setTimeout(
      () => {
        this.#retryTimer = undefined;
        if (!this.#closed) this.#open();
      },
      delay * (0.5 + Math.random() / 2),
    );
  }

  #onFrame(type: "state" | "event" | "complete" | "resync", event: MessageEvent): void {
    const raw = typeof event.lastEventId === "string" ? event.lastEventId : "";
    // Browsers repeat the last id on frames without an `id:` line (the eventsource package
    // gives ""), so a frame carries an id of its own only when it differs from the previous
    // one. `event` and `complete` frames always carry their envelope's id when there is one.
    const id =
      raw !== "" && (raw !== this.#previousLastEventId || type === "event" || type === "complete") ? raw : undefined;
    this.#previousLastEventId = raw;
    const data = typeof event.data === "string" ? event.data : "";
    if (type === "resync") {
      this.#onResync(data);
      return;
    }
    if (id !== undefined) this.#resumeId = id;

    // Inside a snapshot, `state` frames belong to it; any other frame ends it.
    const snapshot = this.#snapshot !== undefined && type === "state";
    if (this.#snapshot !== undefined && !snapshot) this.#endSnapshot();

    const parsed = this.#parse(type, id, data);
    if (parsed !== undefined) {
      if (snapshot) this.#snapshot?.runs.add(parsed.runId);
      // An id delivered before is dropped: the server replayed it. (A snapshot whose cursor
      // was delivered brings nothing new: every envelope up to it has been seen.)
      if (id === undefined || !this.#seen.has(id)) {
        this.#remember(id);
        this.#apply(type, parsed, { id, snapshot });
      }
    }
    // A run's snapshot is one frame; a global one ends with the frame carrying the cursor.
    if (snapshot && (this.#all === null || id !== undefined)) this.#endSnapshot();
  }

  /** A `resync` frame: the snapshot frames that follow replace what the watcher knows. */
  #onResync(data: string): void {
    let reason: unknown;
    let runId: unknown;
    try {
      ({ reason, runId } = JSON.parse(data) as { reason?: unknown; runId?: unknown });
    } catch {
      // Left undefined: reported below.
    }
    const invalid =
      typeof reason !== "string" || !RESYNC_REASONS.includes(reason)
        ? 'its data needs a "reason" of "trimmed" or "unknown_id"'
        : runId !== undefined && (typeof runId !== "string" || !this.#ofThisRun(runId))
          ? this.#otherRun(String(runId))
          : undefined;
    if (invalid !== undefined) {
      this.#error(
        new WatchError("invalid_frame", `skipped an invalid resync frame: ${invalid}`, {
          frame: { type: "resync", id: undefined, data },
        }),
      );
      return;
    }
    if (this.#snapshot !== undefined) this.#endSnapshot();
    // The server sends nothing older than the snapshot, and a restarted source may reuse
    // ids: what was delivered before cannot be told apart from what comes now.
    this.#seen.clear();
    this.#snapshot = { runs: new Set(), reason: reason as ResyncReason };
  }

  /** Validates a frame's data; reports and returns `undefined` when it is not acceptable. */
  #parse(
    type: "state" | "event" | "complete",
    id: string | undefined,
    data: string,
  ): { runId: string; value: RunState | RunEvent } | undefined {
    const invalid = (why: string): undefined => {
      this.#error(
        new WatchError("invalid_frame", `skipped an invalid ${type} frame: ${why}`, { frame: { type, id, data } }),
      );
      return undefined;
    };
    let json: unknown;
    try {
      json = JSON.parse(data);
    } catch {
      return invalid("its data is not JSON");
    }
    if (type === "event") {
      const event = RunEventSchema.safeParse(json);
      if (!event.success) return invalid(describeIssues(event.error));
      return this.#ofThisRun(event.data.run_id)
        ? { runId: event.data.run_id, value: event.data }
        : invalid(this.#otherRun(event.data.run_id));
    }
    const state = RunStateSchema.safeParse(json);
    if (!state.success) return invalid(describeIssues(state.error));
    if (type === "complete" && !isTerminalStatus(state.data.status)) {
      return invalid(`a complete frame needs a terminal status, not "${state.data.status}"`);
    }
    return this.#ofThisRun(state.data.id)
      ? { runId: state.data.id, value: state.data }
      : invalid(this.#otherRun(state.data.id));
  }

  /** A run watcher learns its run from the first frame; frames of other runs are invalid. */
  #ofThisRun(runId: string): boolean {
    return this.#all !== null || this.run === undefined || this.run.id === runId;
  }

  #otherRun(runId: string): string {
    return `it names run ${JSON.stringify(runId)}, not ${JSON.stringify(this.run?.id)}`;
  }

  #apply(
    type: "state" | "event" | "complete",
    parsed: { runId: string; value: RunState | RunEvent },
    info: FrameInfo,
  ): void {
    if (type === "event") {
      this.#handlers.onEvent?.(parsed.value as RunEvent, info);
      return;
    }
    const incoming = parsed.value as RunState;
    const all = this.#all;
    if (all === null) {
      // A snapshot replaces the state; live frames merge into it (fields a frame omits stay).
      this.run = info.snapshot || this.run === undefined ? incoming : { ...this.run, ...incoming };
      if (type === "state") this.#handlers.onState?.(this.run, info);
      else {
        this.#handlers.onComplete?.(this.run, info);
        // The run is over: close now, before the server's end of the response makes the EventSource reconnect.
        this.close();
      }
      return;
    }
    const known = all.runs.get(incoming.id);
    const merged = info.snapshot || known === undefined ? incoming : { ...known, ...incoming };
    all.runs.set(incoming.id, merged);
    if (type === "state") {
      this.#handlers.onState?.(merged, info);
      return;
    }
    all.finished.push(incoming.id);
    while (all.finished.length > all.max) {
      const forgotten = all.finished.shift();
      if (forgotten !== undefined) all.runs.delete(forgotten);
    }
    this.#handlers.onComplete?.(merged, info);
  }

  /** The snapshot in progress has been received in full; after a `resync` frame, report it. */
  #endSnapshot(): void {
    const snapshot = this.#snapshot;
    this.#snapshot = undefined;
    if (snapshot?.reason === undefined || this.#closed) return;
    const { reason } = snapshot;
    const all = this.#all;
    if (all === null) {
      if (this.run !== undefined) this.#handlers.onResync?.(this.run, { reason });
      return;
    }
    const removed: string[] = [];
    for (const [runId, state] of all.runs) {
      if (!isTerminalStatus(state.status) && !snapshot.runs.has(runId)) removed.push(runId);
    }
    for (const runId of removed) all.runs.delete(runId);
    this.#handlers.onResync?.(all.runs, { reason, removed });
  }

  #remember(id: string | undefined): void {
    if (id === undefined) return;
    this.#seen.add(id);
    if (this.#seen.size > DEDUPE_WINDOW) {
      const oldest = this.#seen.values().next();
      if (oldest.done !== true) this.#seen.delete(oldest.value);
    }
  }

  #setStatus(status: WatchStatus): void {
    if (this.status === status) return;
    this.status = status;
    this.#handlers.onStatus?.(status);
  }

  #error(error: WatchError): void {
    this.#handlers.onError?.(error);
  }
}
