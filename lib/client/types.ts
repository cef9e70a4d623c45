/**
 * The types of runcast/client's public API: handlers, options, watchers, connection states.
 *
 * @packageDocumentation
 */
import type { RunEvent, RunState } from "../schema";
import type { WatchError } from "./errors";

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

/**
 * A stream URL (relative URLs work in browsers), or a function giving one, sync or async. A
 * function is called for every (re)connect, so a page can put a fresh, short-lived stream
 * token in each (`?token=`). Whatever it returns never appears in an error message.
 */
export type StreamUrl = string | URL | (() => string | URL | Promise<string | URL>);

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
   * Delay before reopening a stream that dropped or failed, in ms; it doubles with each
   * failure in a row (up to `maxRetryMs`) and starts again once a stream opens. Each delay is
   * jittered: drawn uniformly between half of it and all of it, so pages that lost the same
   * server do not all come back in the same instant. The watcher reopens every stream itself
   * (the server's `retry:` is not used), so that each reconnect calls a URL function afresh.
   * @default 1000
   */
  retryMs?: number;
  /** Longest delay between reopening attempts, before jitter, in ms. @default 30000 */
  maxRetryMs?: number;
  /**
   * The server's heartbeat interval, in ms, for the dead-connection watchdog. The watcher asks
   * for heartbeat frames (`?heartbeat=event`) and learns the interval from them; this
   * overrides what it learns. When nothing at all arrives for 3 intervals, the watcher takes
   * the connection for dead (`stream_stalled`), closes it and reconnects, resuming after the
   * last id. Until an interval is known (set here, or from the first heartbeat frame), the
   * watchdog is idle. @default the interval the server's heartbeat frames announce
   */
  heartbeatMs?: number;
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
  /** Only runs carrying any of these tags (`?tags=a,b`), combined with `runs` as a union. @default every run */
  tags?: readonly string[];
  /** Only these runs (`?runs=id1,id2`, at most 100), combined with `tags` as a union. @default every run */
  runs?: readonly string[];
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
