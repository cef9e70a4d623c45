/**
 * runcast/client: watches runcast streams from a browser or from Node, over `EventSource`.
 *
 * It does what every page consuming these streams otherwise rewrites: validates each frame
 * by the same rules as the server's schemas (plus the page's own, for custom fields), keeps
 * the current state, drops envelopes it has already delivered, reports the server's `resync`
 * frames (a fresh snapshot instead of the missed frames), reconnects by itself (calling a URL
 * function afresh each time, after a jittered delay), notices a connection that went silent,
 * and stops for good once a run is complete.
 *
 * Browser-safe: imports nothing but `zod/mini` (for validation); no Node built-ins, no Express.
 *
 * @packageDocumentation
 */
import type { RunEvent, RunState } from "../schema";
import type {
  AllRunsHandlers,
  AllRunsOptions,
  AllRunsWatcher,
  RunHandlers,
  RunOptions,
  RunWatcher,
  StreamUrl,
  WatchOptions,
} from "./types";
import { Watch } from "./watch";

export type { RunEvent, RunState, RunStatus } from "../schema";
export { DEFAULT_MAX_RETRY_MS, DEFAULT_RETRY_MS } from "./backoff";
export type { FrameSchema, FrameSchemaResult } from "./custom-schema";
export { WatchError, type WatchErrorCode } from "./errors";
export { isTerminalStatus } from "./schema";
export type {
  AllRunsHandlers,
  AllRunsOptions,
  AllRunsResyncInfo,
  AllRunsWatcher,
  EventSourceConstructor,
  EventSourceLike,
  FetchLike,
  FrameInfo,
  FrameSchemas,
  ResyncInfo,
  ResyncReason,
  RunHandlers,
  RunOptions,
  RunWatcher,
  StreamUrl,
  WatchHandlers,
  WatchOptions,
  WatchStatus,
} from "./types";

/** How many finished runs {@link watchAll} keeps in its `state` map. */
export const DEFAULT_MAX_FINISHED_RUNS = 100;

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
 * @param url - The run's stream URL (relative URLs work in browsers), or a function giving
 *   one, called for every (re)connect (see {@link StreamUrl}).
 * @param handlers - What to call as frames arrive; see {@link RunHandlers}.
 * @param options - See {@link RunOptions}.
 */
export function watchRun<State extends RunState = RunState, Event extends RunEvent = RunEvent>(
  url: StreamUrl,
  handlers: RunHandlers<State, Event> = {},
  options: RunOptions<State, Event> = {},
): RunWatcher<State> {
  const watch = new Watch({
    url,
    // The watcher hands these handlers only values that passed the page's schemas, or that
    // the page declared its own types for.
    handlers: handlers as unknown as RunHandlers,
    options: options as unknown as WatchOptions,
    query: [
      ["types", nonEmpty(options.types)],
      ["from", options.from],
    ],
    fromStart: options.from === "start",
    all: null,
  });
  return {
    get state() {
      return watch.run as State | undefined;
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
 * @param url - The global stream URL (relative URLs work in browsers), or a function giving
 *   one, called for every (re)connect (see {@link StreamUrl}).
 * @param handlers - What to call as frames arrive; see {@link AllRunsHandlers}.
 * @param options - See {@link AllRunsOptions}.
 */
export function watchAll<State extends RunState = RunState, Event extends RunEvent = RunEvent>(
  url: StreamUrl,
  handlers: AllRunsHandlers<State, Event> = {},
  options: AllRunsOptions<State, Event> = {},
): AllRunsWatcher<State> {
  const watch = new Watch({
    url,
    handlers: handlers as unknown as AllRunsHandlers,
    options: options as unknown as WatchOptions,
    query: [
      ["types", nonEmpty(options.types)],
      ["tags", options.tags],
      ["runs", options.runs],
    ],
    fromStart: false,
    all: { runs: new Map(), finished: [], max: options.maxFinishedRuns ?? DEFAULT_MAX_FINISHED_RUNS },
  });
  return {
    get state() {
      return watch.runs as ReadonlyMap<string, State>;
    },
    get status() {
      return watch.status;
    },
    close: () => watch.close(),
  };
}

/** `undefined` for an empty list: no `?types=` at all means every type. */
function nonEmpty(list: readonly string[] | undefined): readonly string[] | undefined {
  return list === undefined || list.length === 0 ? undefined : list;
}
