/**
 * The types of runcast/client's public API: handlers, options, watchers, connection states.
 *
 * @packageDocumentation
 */
import type { RunEvent, RunState } from "../schema";
import type { FrameSchema } from "./custom-schema";
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

/**
 * Handlers both watchers take; every one is optional. `State` and `Event` are the page's own
 * types of run states and events (with custom fields such as `units`); see
 * {@link WatchOptions.schemas} to have those fields checked too.
 */
export interface WatchHandlers<State extends RunState = RunState, Event extends RunEvent = RunEvent> {
  /** A run's state changed (live) or was read afresh (snapshot); receives the merged state. */
  onState?: ((state: State, info: FrameInfo) => void) | undefined;
  /** Something happened in a run. */
  onEvent?: ((event: Event, info: FrameInfo) => void) | undefined;
  /** A run ended; receives its final, merged state. */
  onComplete?: ((state: State, info: FrameInfo) => void) | undefined;
  /** The connection state changed. */
  onStatus?: ((status: WatchStatus) => void) | undefined;
  /** A frame was invalid (and skipped), or the stream failed or was refused. */
  onError?: ((error: WatchError) => void) | undefined;
}

/** Handlers of {@link watchRun}. */
export interface RunHandlers<State extends RunState = RunState, Event extends RunEvent = RunEvent>
  extends WatchHandlers<State, Event> {
  /**
   * The server sent a `resync` frame: it could not resume the stream exactly (see
   * {@link ResyncReason}), so a fresh snapshot replaced the run's state and events in between
   * may be missing. Called once the snapshot is applied (after its `onState`), and on nothing
   * but that frame. With `from: "start"` it also means the run's history is incomplete.
   */
  onResync?: ((state: State, info: ResyncInfo) => void) | undefined;
}

/** What {@link AllRunsHandlers.onResync} is told. */
export interface AllRunsResyncInfo extends ResyncInfo {
  /** Active runs that the snapshot no longer lists (they ended while the watcher was away), removed from `state`. */
  removed: string[];
}

/** Handlers of {@link watchAll}. */
export interface AllRunsHandlers<State extends RunState = RunState, Event extends RunEvent = RunEvent>
  extends WatchHandlers<State, Event> {
  /**
   * The server sent a `resync` frame: it could not resume the stream exactly, so a fresh
   * snapshot of the active runs followed; `runs` is the watcher's map once the snapshot is
   * applied (active runs it no longer lists are removed); events in between may be missing.
   * Called when the snapshot ends: at its last frame (the one carrying the cursor), or at the
   * next frame of any kind (a heartbeat at the latest) for a snapshot without one.
   */
  onResync?: ((runs: ReadonlyMap<string, State>, info: AllRunsResyncInfo) => void) | undefined;
}

/**
 * A stream URL (relative URLs work in browsers), or a function giving one, sync or async. A
 * function is called for every (re)connect, so a page can put a fresh, short-lived stream
 * token in each (`?token=`). Whatever it returns never appears in an error message.
 */
export type StreamUrl = string | URL | (() => string | URL | Promise<string | URL>);

/** Schemas for the page's own fields of run states and events; see {@link WatchOptions.schemas}. */
export interface FrameSchemas<State extends RunState = RunState, Event extends RunEvent = RunEvent> {
  /** Checks the data of `state` and `complete` frames, e.g. `RunStateSchema.extend({ units: z.array(z.string()) })`. */
  state?: FrameSchema<State> | undefined;
  /** Checks the data of `event` frames. */
  event?: FrameSchema<Event> | undefined;
}

/** Options of both watchers; all optional. */
export interface WatchOptions<State extends RunState = RunState, Event extends RunEvent = RunEvent> {
  /**
   * The `EventSource` constructor. Defaults to `globalThis.EventSource` (browsers); in Node 20
   * pass the `eventsource` package's.
   */
  EventSource?: EventSourceConstructor | undefined;
  /** Sends cookies on cross-origin streams. @default false */
  withCredentials?: boolean | undefined;
  /** Only these event types (`?types=`); `state` and `complete` frames always arrive. @default every type */
  types?: readonly string[] | undefined;
  /**
   * Delay before reopening a stream that dropped or failed, in ms; it doubles with each
   * failure in a row (up to `maxRetryMs`) and starts again once a stream opens. Each delay is
   * jittered: drawn uniformly between half of it and all of it, so pages that lost the same
   * server do not all come back in the same instant. The watcher reopens every stream itself
   * (the server's `retry:` is not used), so that each reconnect calls a URL function afresh.
   * @default 1000
   */
  retryMs?: number | undefined;
  /** Longest delay between reopening attempts, before jitter, in ms. @default 30000 */
  maxRetryMs?: number | undefined;
  /**
   * The server's heartbeat interval, in ms, for the dead-connection watchdog. The watcher asks
   * for heartbeat frames (`?heartbeat=event`) and learns the interval from them; this
   * overrides what it learns. When nothing at all arrives for 3 intervals, the watcher takes
   * the connection for dead (`stream_stalled`), closes it and reconnects, resuming after the
   * last id. Until an interval is known (set here, or from the first heartbeat frame), the
   * watchdog is idle. @default the interval the server's heartbeat frames announce
   */
  heartbeatMs?: number | undefined;
  /**
   * How to learn the HTTP status of a stream the `EventSource` gave up on without telling it
   * (browsers never do): one `GET` of the stream's URL, dropped as soon as its head (or, for an
   * error, its JSON body) has arrived. With it, a 404 or 403 closes the watcher with
   * `stream_refused` in a browser too, instead of retrying forever. `false` turns the probe off.
   * @default globalThis.fetch
   */
  fetch?: FetchLike | false | undefined;
  /**
   * The page's own schemas for run states and events (zod 4, classic or `zod/mini`, or any
   * Standard Schema; synchronous), run after the built-in checks: data they refuse goes to
   * `onError` as `invalid_frame` and is skipped, and their output is what the handlers get.
   * They also type the handlers (`State`, `Event`) without naming the types.
   * @default none: custom fields pass through unchecked, typed as `unknown` (or as the type
   * arguments given to `watchRun`/`watchAll`, taken on trust)
   */
  schemas?: FrameSchemas<State, Event> | undefined;
}

/** Options of {@link watchRun}. */
export interface RunOptions<State extends RunState = RunState, Event extends RunEvent = RunEvent>
  extends WatchOptions<State, Event> {
  /**
   * `"start"` asks for the run's whole log (`?from=start`): every envelope from its first
   * `state`, through `onState` and `onEvent` in order, then live frames. Reconnects resume
   * after the last id as usual (the server lets `Last-Event-ID` win over `from=start`).
   * Where the server's log no longer starts at the run's beginning, a `resync` frame and a
   * snapshot arrive instead (`onResync`). @default undefined: the run's current state, then live frames
   */
  from?: "start" | undefined;
}

/** Options of {@link watchAll}. */
export interface AllRunsOptions<State extends RunState = RunState, Event extends RunEvent = RunEvent>
  extends WatchOptions<State, Event> {
  /** Only runs carrying any of these tags (`?tags=a,b`), combined with `runs` as a union. @default every run */
  tags?: readonly string[] | undefined;
  /** Only these runs (`?runs=id1,id2`, at most 100), combined with `tags` as a union. @default every run */
  runs?: readonly string[] | undefined;
  /** How many finished runs stay in `state` (the oldest go first). @default 100 */
  maxFinishedRuns?: number | undefined;
}

/** What {@link watchRun} returns. */
export interface RunWatcher<State extends RunState = RunState> {
  /** The run's current state, merged from every state frame; `undefined` before the first. */
  readonly state: State | undefined;
  /** The connection state. */
  readonly status: WatchStatus;
  /** Stops everything: closes the stream and cancels any pending reconnect. Idempotent. */
  close(): void;
}

/** What {@link watchAll} returns. */
export interface AllRunsWatcher<State extends RunState = RunState> {
  /**
   * The runs known to the watcher by id: every active run, plus finished runs seen completing
   * (up to `maxFinishedRuns`) with their final state. Read-only; it changes as frames arrive.
   */
  readonly state: ReadonlyMap<string, State>;
  /** The connection state. */
  readonly status: WatchStatus;
  /** Stops everything: closes the stream and cancels any pending reconnect. Idempotent. */
  close(): void;
}
