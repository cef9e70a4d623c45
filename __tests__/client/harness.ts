import { EventSource } from "eventsource";
import type { AllRunsHandlers, RunHandlers, WatchError, WatchStatus } from "../../lib/client";
import type { RunEvent, RunState } from "../../lib/index";

/** The `eventsource` package's EventSource, keeping every instance so tests can check they are closed. */
export function trackedEventSource(): { EventSource: typeof EventSource; instances: EventSource[] } {
  const instances: EventSource[] = [];
  class Tracked extends EventSource {
    constructor(url: string | URL, init?: ConstructorParameters<typeof EventSource>[1]) {
      super(url, init);
      instances.push(this);
    }
  }
  return { EventSource: Tracked, instances };
}

/** Everything a watcher's handlers were told, in order. */
export class Recorder {
  readonly states: Array<{ state: RunState; id: string | undefined; snapshot: boolean }> = [];
  readonly events: Array<{ event: RunEvent; id: string | undefined }> = [];
  readonly completes: RunState[] = [];
  readonly resyncs: Array<{ reason: string; state?: RunState; runs?: string[]; removed?: string[] }> = [];
  readonly statuses: WatchStatus[] = [];
  readonly errors: WatchError[] = [];
  /** One line per call, for order assertions. */
  readonly log: string[] = [];

  /** Handlers for `watchRun`. */
  run(extra: Partial<RunHandlers> = {}): RunHandlers {
    return {
      ...this.#common(),
      onResync: (state, info) => {
        this.resyncs.push({ reason: info.reason, state });
        this.log.push(`resync:${info.reason}:${state.completed_units}`);
      },
      ...extra,
    };
  }

  /** Handlers for `watchAll`. */
  all(extra: Partial<AllRunsHandlers> = {}): AllRunsHandlers {
    return {
      ...this.#common(),
      onResync: (runs, info) => {
        this.resyncs.push({ reason: info.reason, runs: [...runs.keys()].sort(), removed: [...info.removed].sort() });
        this.log.push(`resync:${info.reason}`);
      },
      ...extra,
    };
  }

  /** The `n` values of the events received, in order. */
  get ns(): unknown[] {
    return this.events.map(({ event }) => event.n);
  }

  #common(): RunHandlers {
    return {
      onState: (state, info) => {
        this.states.push({ state, id: info.id, snapshot: info.snapshot });
        this.log.push(`state:${state.id}:${state.completed_units}${info.snapshot ? ":snapshot" : ""}`);
      },
      onEvent: (event, info) => {
        this.events.push({ event, id: info.id });
        this.log.push(`event:${event.run_id}:${String(event.n ?? event.type)}`);
      },
      onComplete: (state) => {
        this.completes.push(state);
        this.log.push(`complete:${state.id}:${state.status}`);
      },
      onStatus: (status) => {
        this.statuses.push(status);
        this.log.push(`status:${status}`);
      },
      onError: (error) => {
        this.errors.push(error);
        this.log.push(`error:${error.code}`);
      },
    };
  }
}

/**
 * The log of a `from: "start"` watch of run "r" whose log holds states 0 and 1 and events 0 and 1,
 * dropped once and resumed, then event 2 and the complete: the log's own frames (no snapshot), each once.
 */
export function fromStartResumedLog(end: RunState["status"]): string[] {
  return [
    "status:live",
    "state:r:0",
    "event:r:0",
    "state:r:1",
    "event:r:1",
    "status:reconnecting",
    "status:live",
    "event:r:2",
    `complete:r:${end}`,
    "status:closed",
  ];
}
