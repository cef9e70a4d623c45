import { RuncastError } from "./errors";
import { positiveInteger } from "./options";
import { type Envelope, isTerminalStatus, type RunState } from "./schema";
import { compareEnvelopeIds, type RunEventSource, type RunSnapshot } from "./source";
import {
  completionProblem,
  type EventInput,
  orThrow,
  parseEvent,
  parseState,
  patchProblem,
  type RunCompletion,
  type RunInit,
  type RunPatch,
  runIdProblem,
} from "./writer-input";

/** Default number of envelopes {@link MemoryRunSource} keeps for replay. */
export const DEFAULT_HISTORY_SIZE = 10_000;
/** Default number of finished runs {@link MemoryRunSource} remembers. */
export const DEFAULT_MAX_FINISHED_RUNS = 1_000;

/** Options of {@link MemoryRunSource}. */
export interface MemoryRunSourceOptions {
  /**
   * How many envelopes (of all runs together) are kept for `Last-Event-ID` replay. A client
   * that reconnects after more than this many envelopes gets a fresh snapshot instead.
   * @default 10000
   */
  historySize?: number;
  /**
   * How many finished runs stay readable (state and `complete` envelope) before the oldest
   * is forgotten. Active runs are never forgotten.
   * @default 1000
   */
  maxFinishedRuns?: number;
  /** Called when a subscriber throws; the writer call that announced the envelope still succeeds. */
  onListenerError?: (error: unknown) => void;
}

export type { EventInput, RunCompletion, RunInit, RunPatch } from "./writer-input";

interface RunRecord {
  state: RunState;
  completion?: Envelope;
}

let lastEpoch = 0;

/**
 * Each instance numbers its envelopes `<epoch>-<seq>` with an epoch of its own, so an id a
 * browser kept from an earlier process is recognised as foreign (and answered with a fresh
 * snapshot) rather than mistaken for a position in this history.
 */
function nextEpoch(): number {
  lastEpoch = Math.max(Date.now(), lastEpoch + 1);
  return lastEpoch;
}

/**
 * The embedded event source: a complete in-process run store with a bounded history for
 * replay. A daemon writes through `createRun`, `recordEvent`, `updateRun` and `completeRun`;
 * `sseRouter` reads through the {@link RunEventSource} side. Every writer call validates its
 * input and throws a {@link RuncastError} without changing anything when it is wrong.
 */
export class MemoryRunSource implements RunEventSource {
  readonly #runs = new Map<string, RunRecord>();
  /** Finished run ids, oldest first, for eviction. */
  readonly #finished: string[] = [];
  readonly #listeners = new Set<(envelope: Envelope) => void>();
  /** Ring buffer of the newest `historySize` envelopes: seq `s` lives at `s % historySize`. */
  readonly #history: Envelope[] = [];
  readonly #historySize: number;
  readonly #maxFinishedRuns: number;
  readonly #onListenerError: (error: unknown) => void;
  readonly #epoch = nextEpoch();
  #seq = 0;

  constructor(options: MemoryRunSourceOptions = {}) {
    this.#historySize = positiveInteger("historySize", options.historySize, DEFAULT_HISTORY_SIZE);
    this.#maxFinishedRuns = positiveInteger("maxFinishedRuns", options.maxFinishedRuns, DEFAULT_MAX_FINISHED_RUNS);
    this.#onListenerError =
      options.onListenerError ??
      ((error) => process.emitWarning(`runcast: a MemoryRunSource subscriber threw: ${String(error)}`));
  }

  // ---- writer side -------------------------------------------------------------------

  /** Creates a run (status `pending` unless given) and announces its first `state` envelope. */
  createRun(init: RunInit): RunState {
    const badId = runIdProblem(init?.id);
    if (badId !== undefined) throw badId;
    if (this.#runs.has(init.id)) throw new RuncastError("run_exists", `run ${init.id} already exists`);
    const state = orThrow(parseState({ status: "pending", completed_units: 0, ...init }, false));
    this.#runs.set(state.id, { state });
    this.#announce({ type: "state", runId: state.id, data: state });
    return state;
  }

  /** Records an event of an active run (`run_id` and `ts` filled in when absent) and announces it. */
  recordEvent(runId: string, event: EventInput): Envelope {
    this.#activeRun(runId);
    return this.#announce({ type: "event", runId, data: orThrow(parseEvent(runId, event)) });
  }

  /** Merges `patch` into an active run's state and announces the new `state`. */
  updateRun(runId: string, patch: RunPatch): RunState {
    const record = this.#activeRun(runId);
    const refused = patchProblem(runId, patch);
    if (refused !== undefined) throw refused;
    const state = orThrow(parseState({ ...record.state, ...patch, id: runId }, false));
    record.state = state;
    this.#announce({ type: "state", runId, data: state });
    return state;
  }

  /** Ends an active run with a terminal status and announces its `complete` envelope. */
  completeRun(runId: string, final: RunCompletion): Envelope {
    const record = this.#activeRun(runId);
    const refused = completionProblem(final);
    if (refused !== undefined) throw refused;
    const state = orThrow(parseState({ ...record.state, ...final, id: runId }, true));
    const envelope = this.#record({ type: "complete", runId, data: state });
    record.state = state;
    record.completion = envelope;
    this.#finished.push(runId);
    while (this.#finished.length > this.#maxFinishedRuns) {
      const forgotten = this.#finished.shift();
      if (forgotten !== undefined) this.#runs.delete(forgotten);
    }
    this.#emit(envelope);
    return envelope;
  }

  // ---- reader side (RunEventSource) -----------------------------------------------------

  getRun(runId: string): RunState | undefined {
    return this.#runs.get(runId)?.state;
  }

  listRuns(): RunState[] {
    const active: RunState[] = [];
    for (const { state } of this.#runs.values()) if (!isTerminalStatus(state.status)) active.push(state);
    return active;
  }

  snapshot(runId?: string): RunSnapshot | undefined {
    const cursor = this.#seq === 0 ? undefined : this.#id(this.#seq);
    if (runId === undefined) return { states: this.listRuns(), cursor };
    const state = this.getRun(runId);
    return state === undefined ? undefined : { states: [state], cursor };
  }

  getCompletion(runId: string): Envelope | undefined {
    return this.#runs.get(runId)?.completion;
  }

  subscribe(listener: (envelope: Envelope) => void): () => void {
    this.#listeners.add(listener);
    return () => {
      this.#listeners.delete(listener);
    };
  }

  replay(afterId: string, runId?: string): Envelope[] | null {
    const seq = this.#seqOf(afterId);
    const oldest = this.#seq - Math.min(this.#seq, this.#historySize) + 1;
    if (seq === undefined || seq > this.#seq || seq < oldest - 1) return null;
    const out: Envelope[] = [];
    for (let s = seq + 1; s <= this.#seq; s++) {
      const envelope = this.#history[s % this.#historySize];
      if (envelope !== undefined && (runId === undefined || envelope.runId === runId)) out.push(envelope);
    }
    return out;
  }

  compareIds(a: string, b: string): number {
    return compareEnvelopeIds(a, b);
  }

  /** The id of the newest envelope, or `undefined` before the first one. */
  get lastId(): string | undefined {
    return this.#seq === 0 ? undefined : this.#id(this.#seq);
  }

  // ---- internals --------------------------------------------------------------------------

  #activeRun(runId: string): RunRecord {
    const record = this.#runs.get(runId);
    if (record === undefined) throw new RuncastError("run_not_found", `run ${JSON.stringify(runId)} does not exist`);
    if (isTerminalStatus(record.state.status)) {
      throw new RuncastError("run_finished", `run ${runId} is already ${record.state.status}`);
    }
    return record;
  }

  #id(seq: number): string {
    return `${this.#epoch}-${seq}`;
  }

  #seqOf(id: string): number | undefined {
    const dash = id.indexOf("-");
    if (dash < 0 || id.slice(0, dash) !== String(this.#epoch)) return undefined;
    const seq = Number(id.slice(dash + 1));
    return Number.isSafeInteger(seq) && seq >= 0 ? seq : undefined;
  }

  /**
   * Assigns the next id and keeps the envelope in the history. Its parts were validated by the
   * writer call (state or event), and the call built it so that `data` names `runId`: parsing
   * the whole envelope again would only repeat that work.
   */
  #record(envelope: Envelope): Envelope {
    this.#seq += 1;
    const recorded: Envelope = { ...envelope, id: this.#id(this.#seq) };
    this.#history[this.#seq % this.#historySize] = recorded;
    return recorded;
  }

  #announce(envelope: Envelope): Envelope {
    const recorded = this.#record(envelope);
    this.#emit(recorded);
    return recorded;
  }

  #emit(envelope: Envelope): void {
    for (const listener of this.#listeners) {
      try {
        listener(envelope);
      } catch (error) {
        this.#onListenerError(error);
      }
    }
  }
}
