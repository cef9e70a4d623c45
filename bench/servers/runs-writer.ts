import { benchEvent, type RunsWritten, wallClock } from "../protocol";

/** How a writer process records into runs of its source. */
export interface RunRecorder {
  createRun(runId: string): Promise<void>;
  recordEvent(runId: string, event: ReturnType<typeof benchEvent>): Promise<void>;
}

/** Writes awaited at once: enough to keep Redis busy, few enough that none waits long in ioredis's queue. */
const MAX_IN_FLIGHT = 256;

/**
 * The job daemon of the storm phase: several busy runs, each with its own `seq` counter
 * (1, 2, ...), so a client can check it got every event of its run exactly once. Writes are
 * pipelined and bounded; each one's round trip is timed, so a Redis blocked by other work
 * shows as a slow write.
 */
export class RunsWriter {
  readonly #recorder: RunRecorder;
  readonly #seqs = new Map<string, number>();
  #inFlight = 0;
  #waiters: (() => void)[] = [];
  #maxWriteMs = 0;
  #failures = 0;
  #flow: NodeJS.Timeout | undefined;

  constructor(recorder: RunRecorder) {
    this.#recorder = recorder;
  }

  async create(runs: readonly string[]): Promise<void> {
    for (const runId of runs) {
      await this.#recorder.createRun(runId);
      this.#seqs.set(runId, 0);
    }
  }

  /** Records `perRun` events in every run, round robin, and resolves once all were acknowledged. */
  async record(perRun: number): Promise<RunsWritten> {
    for (let i = 0; i < perRun; i++) {
      for (const runId of this.#seqs.keys()) {
        if (this.#inFlight >= MAX_IN_FLIGHT) await new Promise<void>((resolve) => this.#waiters.push(resolve));
        this.#write(runId);
      }
    }
    return this.#settled();
  }

  /** Records `perSecond` events per run and second until called with 0, which resolves once all were acknowledged. */
  async flow(perSecond: number): Promise<RunsWritten> {
    if (this.#flow !== undefined) clearInterval(this.#flow);
    this.#flow = undefined;
    if (perSecond > 0) {
      // One event per run per tick: every run is equally busy, and the order of runs interleaves.
      this.#flow = setInterval(() => {
        for (const runId of this.#seqs.keys()) this.#write(runId);
      }, 1000 / perSecond);
      return this.#written();
    }
    return this.#settled();
  }

  #write(runId: string): void {
    const seq = (this.#seqs.get(runId) ?? 0) + 1;
    this.#seqs.set(runId, seq);
    this.#inFlight++;
    const started = wallClock();
    const done = (): void => {
      this.#maxWriteMs = Math.max(this.#maxWriteMs, wallClock() - started);
      this.#inFlight--;
      this.#waiters.shift()?.();
      if (this.#inFlight === 0) for (const wake of this.#waiters.splice(0)) wake();
    };
    this.#recorder.recordEvent(runId, benchEvent(seq, runId)).then(done, (error: unknown) => {
      // A lost event shows as a client short of it; say why once or twice.
      if (++this.#failures <= 3) console.error(`runs writer: recordEvent failed: ${String(error)}`);
      done();
    });
  }

  async #settled(): Promise<RunsWritten> {
    while (this.#inFlight > 0) await new Promise<void>((resolve) => this.#waiters.push(resolve));
    if (this.#failures > 0) throw new Error(`${this.#failures} writes failed`);
    return this.#written();
  }

  #written(): RunsWritten {
    const written = { seqs: Object.fromEntries(this.#seqs), maxWriteMs: this.#maxWriteMs };
    this.#maxWriteMs = 0;
    return written;
  }
}
