/**
 * One watcher: owns its `EventSource` and every reconnect, classifies and validates frames,
 * remembers ids, and keeps the state (one run's, or a map of runs for a global watcher).
 *
 * @packageDocumentation
 */
import type { RunEvent, RunState } from "../schema";
import { DEFAULT_MAX_RETRY_MS, DEFAULT_RETRY_MS, reconnectDelay } from "./backoff";
import { checkCustom } from "./custom-schema";
import { WatchError } from "./errors";
import { isRefusal, probeStatus, statusOf } from "./probe";
import { checkRunEvent, checkRunState, isTerminalStatus } from "./schema";
import { appendQuery, type QueryParam, resolveUrl } from "./stream-url";
import type {
  AllRunsHandlers,
  EventSourceConstructor,
  EventSourceLike,
  FetchLike,
  FrameInfo,
  ResyncReason,
  RunHandlers,
  StreamUrl,
  WatchOptions,
  WatchStatus,
} from "./types";
import { SILENT_INTERVALS, Watchdog } from "./watchdog";

/** How many recent envelope ids a watcher remembers to drop duplicates. */
const DEDUPE_WINDOW = 10_000;

/** `EventSource.readyState` values, spelled out because a custom constructor may lack the statics. */
const CLOSED = 2;

/** The frame types a watcher listens to. */
const FRAME_TYPES = ["state", "event", "complete", "resync", "heartbeat"] as const;

const RESYNC_REASONS: readonly string[] = ["trimmed", "unknown_id"] satisfies ResyncReason[];

/** What a global watcher keeps. */
export interface RunsMap {
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

/** What a watcher is given: the public options, plus the query parameters of its kind of stream. */
export interface WatchSetup {
  url: StreamUrl;
  handlers: RunHandlers | AllRunsHandlers;
  options: WatchOptions;
  /** Query parameters added to every URL opened (`types`, `from`, `tags`, `runs`). */
  query: readonly QueryParam[];
  /** Whether every connection asks to resume (`from=start`), so none starts with a snapshot. */
  fromStart: boolean;
  /** The map of runs of a global watcher; `null` for a run watcher. */
  all: RunsMap | null;
}

/** One watcher (see the module comment); `watchRun` and `watchAll` wrap it. */
export class Watch {
  status: WatchStatus = "connecting";
  run: RunState | undefined;
  readonly #url: StreamUrl;
  readonly #query: readonly QueryParam[];
  readonly #fromStart: boolean;
  readonly #handlers: RunHandlers & AllRunsHandlers;
  readonly #options: WatchOptions;
  readonly #EventSource: EventSourceConstructor;
  readonly #all: RunsMap | null;
  #source: EventSourceLike | undefined;
  /** The URL the current (or last) `EventSource` opened. */
  #sourceUrl = "";
  #retryTimer: ReturnType<typeof setTimeout> | undefined;
  /** Failed or dropped attempts since a stream last opened. */
  #failures = 0;
  /** The last failure was a 401: a URL function gets one more try (with a fresh token) before the watcher gives up. */
  #unauthorized = false;
  /** The snapshot being received, if the current connection is inside one. */
  #snapshot: SnapshotInProgress | undefined;
  /** `lastEventId` of the previous message of the current `EventSource`, to tell which frames carry an `id:`. */
  #previousLastEventId = "";
  /** The newest id received: where a reopened stream resumes. */
  #resumeId: string | undefined;
  /** Recent envelope ids delivered, oldest first (a Set keeps insertion order). */
  #seen = new Set<string>();
  #closed = false;
  readonly #watchdog = new Watchdog((silentMs) => this.#onSilence(silentMs));

  constructor(setup: WatchSetup) {
    this.#url = setup.url;
    this.#query = setup.query;
    this.#fromStart = setup.fromStart;
    this.#handlers = setup.handlers as RunHandlers & AllRunsHandlers;
    this.#options = setup.options;
    this.#all = setup.all;
    const EventSourceImpl =
      setup.options.EventSource ?? (globalThis as { EventSource?: EventSourceConstructor }).EventSource ?? undefined;
    if (EventSourceImpl === undefined) {
      throw new TypeError(
        "runcast/client: no global EventSource here; pass one as options.EventSource (in Node: the eventsource package)",
      );
    }
    this.#EventSource = EventSourceImpl;
    const { heartbeatMs } = setup.options;
    if (heartbeatMs !== undefined && heartbeatMs > 0) this.#watchdog.intervalMs = heartbeatMs;
    this.#connect();
  }

  get runs(): ReadonlyMap<string, RunState> {
    return this.#all?.runs ?? new Map();
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#retryTimer !== undefined) clearTimeout(this.#retryTimer);
    this.#retryTimer = undefined;
    this.#watchdog.stop();
    this.#source?.close();
    this.#source = undefined;
    this.#setStatus("closed");
  }

  /** Gets the URL (calling a URL function afresh), then opens the stream. */
  #connect(): void {
    let url: string | Promise<string>;
    try {
      url = resolveUrl(this.#url);
    } catch (cause) {
      this.#urlFailed(cause);
      return;
    }
    if (typeof url === "string") this.#open(url);
    else {
      url.then(
        (resolved) => {
          if (!this.#closed) this.#open(resolved);
        },
        (cause: unknown) => {
          if (!this.#closed) this.#urlFailed(cause);
        },
      );
    }
  }

  #urlFailed(cause: unknown): void {
    // The cause is the page's own error; the message says nothing of any URL or token.
    this.#error(new WatchError("url_failed", "the stream URL function failed; trying again", { cause }));
    this.#retry();
  }

  #open(base: string): void {
    // A reopened stream resumes where the last one stopped: a new EventSource cannot send
    // Last-Event-ID, so the query parameter carries it.
    // Heartbeats as frames, not comments: an EventSource never shows comments to the page,
    // and the watchdog needs to see that the connection is alive.
    const url = appendQuery(base, [...this.#query, ["heartbeat", "event"], ["lastEventId", this.#resumeId]]);
    const source = new this.#EventSource(url, { withCredentials: this.#options.withCredentials === true });
    this.#source = source;
    this.#sourceUrl = url;
    this.#previousLastEventId = "";
    const mine = (listener: (event: MessageEvent) => void) => (event: MessageEvent) => {
      if (this.#closed || this.#source !== source) return;
      this.#watchdog.feed();
      listener(event);
    };
    // Silence counts from the request: a server that never answers is as dead as one that stopped.
    this.#watchdog.start();
    source.addEventListener(
      "open",
      mine(() => this.#onOpen()),
    );
    source.addEventListener(
      "error",
      mine((event) => this.#onFailure(source, event)),
    );
    for (const type of FRAME_TYPES) {
      source.addEventListener(
        type,
        mine((event) => this.#onFrame(type, event)),
      );
    }
  }

  #onOpen(): void {
    this.#failures = 0;
    this.#unauthorized = false;
    // A connection that asks to resume (after an id, or `from=start`) starts with the log's
    // own frames, and with a snapshot only after a `resync` frame; one that does not starts
    // with a snapshot.
    const resumes = this.#resumeId !== undefined || this.#fromStart;
    this.#snapshot = resumes ? undefined : { runs: new Set(), reason: undefined };
    this.#setStatus("live");
  }

  #onFailure(source: EventSourceLike, event: MessageEvent): void {
    this.#snapshot = undefined;
    this.#watchdog.stop();
    // The EventSource either gave up (an HTTP error, a 204, a wrong content type) or would
    // reconnect by itself after a drop. Every reconnect is the watcher's own instead: with a
    // fresh URL from a URL function, and a jittered delay.
    const gaveUp = source.readyState === CLOSED;
    source.close();
    this.#source = undefined;
    if (!gaveUp) {
      this.#retry();
      return;
    }
    const status = statusOf(event);
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
    const reason = serverCode === undefined ? "" : `: ${serverCode}`;
    // An expired or refused token: a URL function may mint a good one, so one more try.
    const freshToken = status === 401 && typeof this.#url === "function" && !this.#unauthorized;
    this.#unauthorized = status === 401;
    if (isRefusal(status) && !freshToken) {
      this.#error(
        new WatchError("stream_refused", `the server refused the stream (HTTP ${status}${reason})`, {
          status,
          ...(serverCode === undefined ? {} : { serverCode }),
        }),
      );
      this.close();
      return;
    }
    this.#error(
      new WatchError(
        "stream_failed",
        `the stream failed${status === undefined ? "" : ` (HTTP ${status}${reason})`}; reopening it`,
        { ...(status === undefined ? {} : { status }), ...(serverCode === undefined ? {} : { serverCode }) },
      ),
    );
    this.#retry();
  }

  /** The watchdog found the connection silent for too long: drop it and reconnect, as after a drop. */
  #onSilence(silentMs: number): void {
    const source = this.#source;
    if (source === undefined || this.#closed) return;
    this.#snapshot = undefined;
    source.close();
    this.#source = undefined;
    this.#error(
      new WatchError(
        "stream_stalled",
        `nothing arrived for ${silentMs} ms (${SILENT_INTERVALS} heartbeat intervals of ${this.#watchdog.intervalMs} ms); reconnecting`,
      ),
    );
    this.#retry();
  }

  /** Reopens the stream after a jittered, growing delay. */
  #retry(): void {
    this.#failures++;
    const delay = reconnectDelay(
      this.#failures,
      this.#options.retryMs ?? DEFAULT_RETRY_MS,
      this.#options.maxRetryMs ?? DEFAULT_MAX_RETRY_MS,
    );
    this.#setStatus("reconnecting");
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = undefined;
      if (!this.#closed) this.#connect();
    }, delay);
  }

  #onFrame(type: (typeof FRAME_TYPES)[number], event: MessageEvent): void {
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
    if (type === "heartbeat") {
      // Also the end of a snapshot that has no frame carrying a cursor (no runs in view).
      if (this.#snapshot !== undefined) this.#endSnapshot();
      this.#onHeartbeat(data);
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

  /** A heartbeat frame (`{"intervalMs":N}`): learn the interval, unless `heartbeatMs` set it. */
  #onHeartbeat(data: string): void {
    let intervalMs: unknown;
    try {
      ({ intervalMs } = JSON.parse(data) as { intervalMs?: unknown });
    } catch {
      // Left undefined: reported below.
    }
    if (typeof intervalMs !== "number" || !Number.isFinite(intervalMs) || intervalMs <= 0) {
      this.#error(
        new WatchError("invalid_frame", 'skipped an invalid heartbeat frame: its data needs a positive "intervalMs"', {
          frame: { type: "heartbeat", id: undefined, data },
        }),
      );
      return;
    }
    if (this.#options.heartbeatMs === undefined || this.#options.heartbeatMs <= 0)
      this.#watchdog.intervalMs = intervalMs;
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
    const schemas = this.#options.schemas;
    if (type === "event") {
      let event = checkRunEvent(json);
      if (event.ok && schemas?.event !== undefined) event = checkCustom(schemas.event, event.value);
      if (!event.ok) return invalid(event.why);
      return this.#ofThisRun(event.value.run_id)
        ? { runId: event.value.run_id, value: event.value }
        : invalid(this.#otherRun(event.value.run_id));
    }
    let state = checkRunState(json);
    if (state.ok && schemas?.state !== undefined) state = checkCustom(schemas.state, state.value);
    if (!state.ok) return invalid(state.why);
    if (type === "complete" && !isTerminalStatus(state.value.status)) {
      return invalid(`a complete frame needs a terminal status, not "${state.value.status}"`);
    }
    return this.#ofThisRun(state.value.id)
      ? { runId: state.value.id, value: state.value }
      : invalid(this.#otherRun(state.value.id));
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
