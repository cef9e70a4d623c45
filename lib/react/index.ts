/**
 * runcast/react: React hooks over runcast/client. `useRun` watches one run, `useRuns` every
 * run (or a filtered set); components that watch the same stream share one connection.
 * Safe under server rendering (nothing connects until the component mounts in a browser) and
 * under StrictMode (its double mount leaves one connection).
 *
 * @packageDocumentation
 */
import { useCallback, useSyncExternalStore } from "react";
import {
  type AllRunsOptions,
  type RunEvent,
  type RunOptions,
  type RunState,
  type StreamUrl,
  type WatchError,
  type WatchStatus,
  watchAll,
  watchRun,
} from "runcast/client";
import { SharedWatchers, variantOf } from "./store";

/** Default number of events {@link useRun} keeps (the newest). */
export const DEFAULT_MAX_EVENTS = 1_000;

/**
 * Options of {@link useRun}: those of `watchRun` (`schemas` included, which also type the
 * view), plus how many events to keep.
 */
export type UseRunOptions<State extends RunState = RunState, Event extends RunEvent = RunEvent> = RunOptions<
  State,
  Event
> & {
  /** Most events kept in `events`, the oldest dropped first. @default 1000 */
  maxEvents?: number | undefined;
};

/**
 * What {@link useRun} returns; the same object until something changes. `State` and `Event`
 * are the page's own types of run states and events, as with `watchRun`.
 */
export interface RunView<State extends RunState = RunState, Event extends RunEvent = RunEvent> {
  /** The run's state, merged from every state frame; `undefined` until the first arrives. */
  readonly state: State | undefined;
  /** The run's events in order (its history first with `from: "start"`), at most `maxEvents`. */
  readonly events: readonly Event[];
  /** The connection: `connecting`, `live`, `reconnecting` or `closed` (after `complete`, or refused). */
  readonly status: WatchStatus;
  /** The last error (an invalid frame, a failed or refused stream); cleared once live again. */
  readonly error: WatchError | undefined;
}

/** What {@link useRuns} returns; the same object until something changes. `State` as in {@link RunView}. */
export interface RunsView<State extends RunState = RunState> {
  /** The runs by id: active ones, plus those seen finishing. */
  readonly runs: ReadonlyMap<string, State>;
  readonly status: WatchStatus;
  readonly error: WatchError | undefined;
}

const INITIAL_RUN: RunView = Object.freeze({
  state: undefined,
  events: Object.freeze([]),
  status: "connecting",
  error: undefined,
});
const INITIAL_RUNS: RunsView = Object.freeze({
  runs: new Map<string, RunState>(),
  status: "connecting",
  error: undefined,
});
/** The view when there is nothing to watch (`url` is `null`). */
const IDLE_RUN: RunView = Object.freeze({ ...INITIAL_RUN, status: "closed" });
const IDLE_RUNS: RunsView = Object.freeze({ ...INITIAL_RUNS, status: "closed" });

const runs = new SharedWatchers<RunView>();
const alls = new SharedWatchers<RunsView>();

function statusUpdate<View extends { status: WatchStatus; error: WatchError | undefined }>(
  status: WatchStatus,
): (view: View) => View {
  return (view) =>
    view.status === status ? view : { ...view, status, error: status === "live" ? undefined : view.error };
}

/**
 * Watches one run's stream. Returns `{ state, events, status, error }`, re-rendering the
 * component as frames arrive. Components passing the same `url` (and equal options) share one
 * connection. A new `url` moves the watch; `null` watches nothing. A URL function (to mint a
 * fresh stream token per connect) is compared by identity: keep it stable (`useCallback`).
 *
 * `State` and `Event` type `state` and `events` with the page's custom fields (e.g.
 * `useRun<DeployState>(url)`, taken on trust as with `watchRun`'s type arguments), or follow
 * from the page's schemas (`{ schemas: { state: DeployStateSchema } }`), which check them.
 */
export function useRun<State extends RunState = RunState, Event extends RunEvent = RunEvent>(
  url: StreamUrl | null,
  options: UseRunOptions<State, Event> = {},
): RunView<State, Event> {
  const { maxEvents = DEFAULT_MAX_EVENTS, ...watchOptions } = options;
  const variant = variantOf(options);
  // Options are compared by value through `variant` (a new object each render must not reconnect).
  // biome-ignore lint/correctness/useExhaustiveDependencies: `variant` stands for the options' values
  const subscribe = useCallback(
    (listener: () => void) => {
      if (url === null) return () => {};
      return runs.subscribe(
        url,
        variant,
        INITIAL_RUN,
        (publish) => {
          const watcher = watchRun(
            url,
            {
              onState: (state) => publish((view) => ({ ...view, state })),
              onComplete: (state) => publish((view) => ({ ...view, state })),
              onEvent: (event) =>
                publish((view) => {
                  const kept =
                    view.events.length >= maxEvents
                      ? view.events.slice(view.events.length - maxEvents + 1)
                      : view.events;
                  return { ...view, events: [...kept, event] };
                }),
              onStatus: (status) => publish(statusUpdate<RunView>(status)),
              onError: (error) => publish((view) => ({ ...view, error })),
            },
            watchOptions as RunOptions,
          );
          return () => watcher.close();
        },
        listener,
      );
    },
    [url, variant],
  );
  const view = (): RunView => (url === null ? IDLE_RUN : (runs.peek(url, variant) ?? INITIAL_RUN));
  // The view holds what the watcher delivered: the page's types are its word for the custom fields.
  return useSyncExternalStore(subscribe, view, () => (url === null ? IDLE_RUN : INITIAL_RUN)) as RunView<State, Event>;
}

/**
 * Watches the global stream: every run the server lets this page see (narrowed by the
 * options `watchAll` takes). Returns `{ runs, status, error }`; shared like {@link useRun}.
 * `State` and `Event` as in {@link useRun} (`Event` types `schemas.event`).
 */
export function useRuns<State extends RunState = RunState, Event extends RunEvent = RunEvent>(
  url: StreamUrl | null,
  options: AllRunsOptions<State, Event> = {},
): RunsView<State> {
  const variant = variantOf(options);
  // Options are compared by value through `variant` (a new object each render must not reconnect).
  // biome-ignore lint/correctness/useExhaustiveDependencies: `variant` stands for the options' values
  const subscribe = useCallback(
    (listener: () => void) => {
      if (url === null) return () => {};
      return alls.subscribe(
        url,
        variant,
        INITIAL_RUNS,
        (publish) => {
          const watcher = watchAll(
            url,
            {
              // The watcher's own map is mutated in place: each change publishes a copy, so views stay immutable.
              onState: () => publish((view) => ({ ...view, runs: new Map(watcher.state) })),
              onComplete: () => publish((view) => ({ ...view, runs: new Map(watcher.state) })),
              onResync: () => publish((view) => ({ ...view, runs: new Map(watcher.state) })),
              onStatus: (status) => publish(statusUpdate<RunsView>(status)),
              onError: (error) => publish((view) => ({ ...view, error })),
            },
            // The view is typed by the page's types; the watcher underneath needs none of them.
            options as AllRunsOptions,
          );
          return () => watcher.close();
        },
        listener,
      );
    },
    [url, variant],
  );
  const view = (): RunsView => (url === null ? IDLE_RUNS : (alls.peek(url, variant) ?? INITIAL_RUNS));
  return useSyncExternalStore(subscribe, view, () => (url === null ? IDLE_RUNS : INITIAL_RUNS)) as RunsView<State>;
}

export type { RunEvent, RunState, WatchError, WatchStatus } from "runcast/client";
