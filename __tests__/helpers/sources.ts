import type { Envelope, RunEventSource, RunState } from "../../lib/index";

/**
 * A minimal adapter with only the required methods (no snapshot, replay, completion), whose
 * `emit` pushes anything, valid or not, to subscribers: how a host's own buggy adapter looks.
 */
export class BareSource implements RunEventSource {
  readonly runs = new Map<string, RunState>();
  readonly listeners = new Set<(envelope: Envelope) => void>();
  getRunError: Error | undefined;

  getRun(runId: string): RunState | undefined {
    if (this.getRunError !== undefined) throw this.getRunError;
    return this.runs.get(runId);
  }
  listRuns(): RunState[] {
    return [...this.runs.values()];
  }
  subscribe(listener: (envelope: Envelope) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
  /** Pushes a value to subscribers as if it were an envelope. */
  emit(value: unknown): void {
    for (const listener of this.listeners) listener(value as Envelope);
  }
}

/** Waits a few turns of the event loop, as a networked store would. */
function later<T>(value: () => T, turns = 3): Promise<T> {
  return new Promise((resolve) => {
    const step = (left: number): void => {
      if (left === 0) resolve(value());
      else setImmediate(() => step(left - 1));
    };
    step(turns);
  });
}

/**
 * An asynchronous adapter over a MemoryRunSource: every read answers a few event-loop turns
 * late (the snapshot and replay are read when the answer is sent, so writes made meanwhile are
 * in them), live envelopes are delivered late too, and replay is an async iterable.
 */
export class LaggingSource implements RunEventSource {
  constructor(readonly inner: import("../../lib/index").MemoryRunSource) {}

  getRun(runId: string): Promise<RunState | undefined> {
    return later(() => this.inner.getRun(runId));
  }
  listRuns(): Promise<RunState[]> {
    return later(() => this.inner.listRuns());
  }
  snapshot(runId?: string) {
    return later(() => this.inner.snapshot(runId));
  }
  getCompletion(runId: string) {
    return later(() => this.inner.getCompletion(runId));
  }
  subscribe(listener: (envelope: Envelope) => void): () => void {
    // Live delivery lags behind the store, as a stream reader's does.
    return this.inner.subscribe((envelope) => {
      void later(() => listener(envelope), 5);
    });
  }
  replay(afterId: string, runId?: string): AsyncIterable<Envelope> | Promise<null> {
    const found = this.inner.replay(afterId, runId);
    if (found === null) return Promise.resolve(null);
    return (async function* () {
      for (const envelope of found) yield await later(() => envelope, 1);
    })();
  }
}
