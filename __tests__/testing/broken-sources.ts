import { type Envelope, type LogGap, type LogPage, type LogQuery, MemoryRunSource } from "../../lib/index";
import type { RunSnapshot } from "../../lib/source";
import type { ConformanceWriter, SourceFixture } from "../../lib/testing/index";

/**
 * Deliberately broken sources, each with one trap adapter authors fall into, built over a
 * MemoryRunSource that does everything else right. The kit must fail each of them.
 */

function macrotask(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** Delegates everything to a MemoryRunSource; subclasses break one thing. */
class Wrapper {
  readonly inner = new MemoryRunSource({ historySize: 50 });
  getRun(runId: string) {
    return this.inner.getRun(runId);
  }
  listRuns() {
    return this.inner.listRuns();
  }
  subscribe(listener: (envelope: Envelope) => void): () => void {
    return this.inner.subscribe(listener);
  }
  replay(afterId: string, runId?: string): Envelope[] | null {
    return this.inner.replay(afterId, runId);
  }
  getCompletion(runId: string) {
    return this.inner.getCompletion(runId);
  }
  snapshot(runId?: string): RunSnapshot | undefined | Promise<RunSnapshot | undefined> {
    return this.inner.snapshot(runId);
  }
  fixture(): SourceFixture {
    return { source: this, writer: this.inner };
  }
}

/** Reads the state, then (after a round trip, as over a network) the cursor: not atomically. */
export class SnapshotWithoutAtomicCursor extends Wrapper {
  override async snapshot(runId?: string): Promise<RunSnapshot | undefined> {
    const states = runId === undefined ? this.inner.listRuns() : [this.inner.getRun(runId)];
    await macrotask();
    if (states[0] === undefined && runId !== undefined) return undefined;
    return { states: states as RunSnapshot["states"], cursor: this.inner.lastId };
  }
}

/** Starts its live reader at "the newest entry" when the reader's first read arrives, a moment after subscribe. */
export class LiveReaderFromNewest extends Wrapper {
  override subscribe(listener: (envelope: Envelope) => void): () => void {
    let stop: (() => void) | undefined;
    let stopped = false;
    void macrotask().then(() => {
      if (!stopped) stop = this.inner.subscribe(listener);
    });
    return () => {
      stopped = true;
      stop?.();
    };
  }
}

/** Ids that are counters compared as strings: "10" sorts before "9". */
export class StringOrderedIds extends Wrapper {
  override subscribe(listener: (envelope: Envelope) => void): () => void {
    return this.inner.subscribe((envelope) => listener({ ...envelope, id: envelope.id?.split("-")[1] }));
  }
  compareIds(a: string, b: string): number {
    return a < b ? -1 : a > b ? 1 : 0;
  }
}

/** Delivers every envelope twice. */
export class DeliversTwice extends Wrapper {
  override subscribe(listener: (envelope: Envelope) => void): () => void {
    return this.inner.subscribe((envelope) => {
      listener(envelope);
      listener(envelope);
    });
  }
}

/** Treats an id it does not know as "from the beginning" instead of answering null. */
export class ReplaysUnknownIdsFromStart extends Wrapper {
  readonly #all: Envelope[] = [];
  constructor() {
    super();
    this.inner.subscribe((envelope) => this.#all.push(envelope));
  }
  override replay(afterId: string, runId?: string): Envelope[] | null {
    const everything = this.#all.filter((envelope) => runId === undefined || envelope.runId === runId);
    return this.inner.replay(afterId, runId) ?? everything;
  }
}

/** Announces events written to a finished run, with ids after its complete. */
export class EventsAfterComplete extends Wrapper {
  readonly #listeners = new Set<(envelope: Envelope) => void>();
  #extra = 0;
  override subscribe(listener: (envelope: Envelope) => void): () => void {
    this.#listeners.add(listener);
    const stop = this.inner.subscribe(listener);
    return () => {
      this.#listeners.delete(listener);
      stop();
    };
  }
  override fixture(): SourceFixture {
    const inner = this.inner;
    const writer: ConformanceWriter = {
      createRun: (init) => inner.createRun(init),
      updateRun: (runId, patch) => inner.updateRun(runId, patch),
      completeRun: (runId, final) => inner.completeRun(runId, final),
      recordEvent: (runId, event) => {
        if (inner.getCompletion(runId) === undefined) return inner.recordEvent(runId, event);
        this.#extra += 1;
        const late: Envelope = {
          type: "event",
          runId,
          id: `${inner.lastId}${"9".repeat(this.#extra)}`,
          data: { ...event, run_id: runId, ts: new Date().toISOString() },
        };
        for (const listener of this.#listeners) listener(late);
        return late;
      },
    };
    return { source: this, writer };
  }
}

/**
 * Run logs as a view of the global history: correct until a busy run's envelopes push a
 * quiet run's out of the shared, bounded history.
 */
export class RunLogsInSharedHistory extends Wrapper {
  readonly #history: Envelope[] = [];
  readonly #seen = new Map<string, Set<string>>();
  readonly #first = new Map<string, string>();

  constructor(readonly size: number) {
    super();
    this.inner.subscribe((envelope) => {
      const id = envelope.id as string;
      this.#history.push(envelope);
      if (this.#history.length > size) this.#history.shift();
      if (!this.#first.has(envelope.runId)) this.#first.set(envelope.runId, id);
      const seen = this.#seen.get(envelope.runId) ?? new Set<string>();
      seen.add(id);
      this.#seen.set(envelope.runId, seen);
    });
  }

  override snapshot(runId?: string): RunSnapshot | undefined {
    const taken = this.inner.snapshot(runId);
    if (taken === undefined || runId === undefined) return taken;
    const mine = this.#history.filter((envelope) => envelope.runId === runId);
    return { ...taken, cursor: mine[mine.length - 1]?.id };
  }

  readLog({ runId, after, limit }: LogQuery): LogPage | LogGap | undefined {
    if (runId === undefined) return { gap: "unknown_id" };
    if (this.inner.getRun(runId) === undefined) return undefined;
    const mine = this.#history.filter((envelope) => envelope.runId === runId);
    if (after === undefined) {
      return mine[0]?.id === this.#first.get(runId) ? { envelopes: mine.slice(0, limit) } : { gap: "trimmed" };
    }
    const at = mine.findIndex((envelope) => envelope.id === after);
    if (at >= 0) return { envelopes: mine.slice(at + 1, at + 1 + limit) };
    return this.#seen.get(runId)?.has(after) === true ? { gap: "trimmed" } : { gap: "unknown_id" };
  }
}
