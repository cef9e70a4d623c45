import { type Envelope, MemoryRunSource, type RunEventSource, type RunState } from "../../lib/index";

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

/**
 * A host's own adapter over a MemoryRunSource, with the faults an adapter author can make:
 * a `compareIds` that throws on ids it cannot parse, `emit` pushing any value to subscribers
 * next to the store's own envelopes, and `states` overriding what reads return for a run.
 */
export class FaultySource implements RunEventSource {
  readonly listeners = new Set<(envelope: Envelope) => void>();
  /** States returned instead of the store's, by run id (a value JSON cannot carry, say). */
  readonly states = new Map<string, unknown>();

  constructor(readonly inner = new MemoryRunSource()) {}

  getRun(runId: string): RunState | undefined {
    return (this.states.get(runId) as RunState | undefined) ?? this.inner.getRun(runId);
  }
  listRuns(): RunState[] {
    const overridden = [...this.states.values()] as RunState[];
    return [...this.inner.listRuns().filter((state) => !this.states.has(state.id)), ...overridden];
  }
  /** While set, snapshots are read (and answered) only once it resolves. */
  snapshotGate: Promise<void> | undefined;

  snapshot(runId?: string) {
    const read = () => {
      const snapshot = this.inner.snapshot(runId);
      if (runId === undefined) return { states: this.listRuns(), cursor: snapshot?.cursor };
      const state = this.getRun(runId);
      return state === undefined ? undefined : { states: [state], cursor: snapshot?.cursor };
    };
    return this.snapshotGate === undefined ? read() : this.snapshotGate.then(read);
  }
  getCompletion(runId: string) {
    return this.inner.getCompletion(runId);
  }
  replay(afterId: string, runId?: string) {
    return this.inner.replay(afterId, runId);
  }
  subscribe(listener: (envelope: Envelope) => void): () => void {
    const off = this.inner.subscribe(listener);
    this.listeners.add(listener);
    return () => {
      off();
      this.listeners.delete(listener);
    };
  }
  /** Pushes a value to subscribers as if it were an envelope. */
  emit(value: unknown): void {
    for (const listener of this.listeners) listener(value as Envelope);
  }
  /** Throws on any id that is not `<digits>-<digits>`, as a strict parser of its own ids would. */
  compareIds(a: string, b: string): number {
    for (const id of [a, b]) if (!/^\d+-\d+$/.test(id)) throw new Error(`cannot parse envelope id ${id}`);
    const [x, y] = [a, b].map((id) => id.split("-").map(Number)) as [number[], number[]];
    return (x[0] as number) - (y[0] as number) || (x[1] as number) - (y[1] as number);
  }
}
