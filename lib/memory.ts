import { RuncastError } from "./errors";
import { positiveInteger } from "./options";
import { RunLog } from "./run-log";
import { type Envelope, isTerminalStatus, type RunEvent, type RunState } from "./schema";
import {
  compareEnvelopeIds,
  type LogGap,
  type LogPage,
  type LogQuery,
  type RunEventSource,
  type RunSnapshot,
} from "./source";
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
  tagsProblem,
} from "./writer-input";

/** Default number of envelopes (of all runs) {@link MemoryRunSource} keeps for the global stream's resumes. */
export const DEFAULT_HISTORY_SIZE = 10_000;
/** Default number of finished runs {@link MemoryRunSource} remembers. */
export const DEFAULT_MAX_FINISHED_RUNS = 1_000;
/** Default number of envelopes each run's log keeps. */
export const DEFAULT_MAX_RUN_LOG_SIZE = 5_000;

/** Options of {@link MemoryRunSource}. */
export interface MemoryRunSourceOptions {
  /**
   * How many envelopes (of all runs together) the global history keeps, for resumes of the
   * global stream. A global client that reconnects after more than this many envelopes gets
   * a `resync` and a fresh snapshot instead. Per-run streams resume from their run's log.
   * @default 10000
   */
  historySize?: number | undefined;
  /**
   * How many envelopes each run's log keeps (its first `state`, events, states, `complete`):
   * the oldest of that run go first, so a busy run never pushes out another run's log.
   * @default 5000
   */
  maxRunLogSize?: number | undefined;
  /**
   * How many finished runs stay readable (state, log and `complete`) before the oldest is
   * forgotten whole. Active runs are never forgotten.
   * @default 1000
   */
  maxFinishedRuns?: number | undefined;
  /**
   * When set, a finished run is also forgotten this many ms after its `complete`.
   * @default undefined (kept until `maxFinishedRuns` pushes it out)
   */
  finishedRunTtlMs?: number | undefined;
  /** Called when a subscriber throws; the writer call that announced the envelope still succeeds. */
  onListenerError?: ((error: unknown) => void) | undefined;
}

export type { CustomStateFields, EventInput, RunCompletion, RunInit, RunPatch } from "./writer-input";

interface RunRecord {
  state: RunState;
  log: RunLog;
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

/** Canonical envelope ids of a MemoryRunSource: `<epoch>-<seq>`, both decimal, no leading zeros. */
const MEMORY_ID = /^([1-9]\d{0,15})-([1-9]\d{0,15})$/;

/**
 * The embedded event source: a complete in-process run store with a log per run and a
 * bounded global history for resumes. A daemon writes through `createRun`, `recordEvent`, `updateRun` and `completeRun`;
 * `sseRouter` reads through the {@link RunEventSource} side. Every writer call validates its
 * input and throws a {@link RuncastError} without changing anything when it is wrong. What it
 * keeps is a deeply frozen JSON copy of that input, and that is what every call hands out:
 * copy a state (`{ ...state, field }`) to change it.
 *
 * `State` and `Event` are the host's own types of run states and events (see
 * {@link RunEventSource}): `new MemoryRunSource<DeployState>()` types what `createRun` and
 * `updateRun` take and what `getRun` and `snapshot` give, and rejects at compile time a field
 * `DeployState` does not declare. They are taken on trust: the checks at run time cover the
 * built-in fields only.
 */
export class MemoryRunSource<State extends RunState = RunState, Event extends RunEvent = RunEvent>
  implements RunEventSource<State, Event>
{
  readonly #runs = new Map<string, RunRecord>();
  /** Finished runs, oldest first, with when they finished, for eviction. */
  #finished: ({ runId: string; at: number } | undefined)[] = [];
  #finishedHead = 0;
  readonly #listeners = new Set<(envelope: Envelope) => void>();
  /** Ring buffer of the newest `historySize` envelopes: seq `s` lives at `s % historySize`. */
  readonly #history: Envelope[] = [];
  readonly #historySize: number;
  readonly #maxRunLogSize: number;
  readonly #maxFinishedRuns: number;
  readonly #finishedRunTtlMs: number | undefined;
  readonly #onListenerError: (error: unknown) => void;
  readonly #epoch = nextEpoch();
  #seq = 0;

  constructor(options: MemoryRunSourceOptions = {}) {
    this.#historySize = positiveInteger("historySize", options.historySize, DEFAULT_HISTORY_SIZE);
    this.#maxRunLogSize = positiveInteger("maxRunLogSize", options.maxRunLogSize, DEFAULT_MAX_RUN_LOG_SIZE);
    this.#maxFinishedRuns = positiveInteger("maxFinishedRuns", options.maxFinishedRuns, DEFAULT_MAX_FINISHED_RUNS);
    this.#finishedRunTtlMs =
      options.finishedRunTtlMs === undefined
        ? undefined
        : positiveInteger("finishedRunTtlMs", options.finishedRunTtlMs, 0);
    this.#onListenerError =
      options.onListenerError ??
      ((error) => process.emitWarning(`runcast: a MemoryRunSource subscriber threw: ${String(error)}`));
  }

  // ---- writer side -------------------------------------------------------------------

  /** Creates a run (status `pending` unless given) and announces its first `state` envelope. */
  createRun(init: RunInit<State>): State {
    const badId = runIdProblem(init?.id);
    if (badId !== undefined) throw badId;
    this.#forgetExpired();
    if (this.#runs.has(init.id)) throw new RuncastError("run_exists", `run ${init.id} already exists`);
    const state = orThrow(parseState({ status: "pending", completed_units: 0, ...init }, false, true));
    const envelope = this.#record({ type: "state", runId: state.id, data: state });
    this.#runs.set(state.id, { state, log: new RunLog(this.#maxRunLogSize, { seq: this.#seq, envelope }) });
    this.#emit(envelope);
    return state as State;
  }

  /** Records an event of an active run (`run_id` and `ts` filled in when absent) and announces it. */
  recordEvent(runId: string, event: EventInput<Event>): Envelope<State, Event> {
    const record = this.#activeRun(runId);
    return this.#typed(
      this.#announce(record, { type: "event", runId, data: orThrow(parseEvent(runId, event as EventInput, true)) }),
    );
  }

  /** Merges `patch` into an active run's state and announces the new `state`. */
  updateRun(runId: string, patch: RunPatch<State>): State {
    const record = this.#activeRun(runId);
    const refused = patchProblem(runId, patch as RunPatch) ?? tagsProblem(runId, patch as RunPatch, record.state.tags);
    if (refused !== undefined) throw refused;
    const state = orThrow(parseState({ ...record.state, ...patch, id: runId }, false, true));
    record.state = state;
    this.#announce(record, { type: "state", runId, data: state });
    return state as State;
  }

  /** Ends an active run with a terminal status and announces its `complete` envelope. */
  completeRun(runId: string, final: RunCompletion<State>): Envelope<State, Event> {
    const record = this.#activeRun(runId);
    const refused =
      completionProblem(final as RunCompletion) ?? tagsProblem(runId, final as RunCompletion, record.state.tags);
    if (refused !== undefined) throw refused;
    const state = orThrow(parseState({ ...record.state, ...final, id: runId }, true, true));
    const envelope = this.#record({ type: "complete", runId, data: state });
    record.log.append(this.#seq, envelope);
    record.state = state;
    record.completion = envelope;
    this.#finished.push({ runId, at: Date.now() });
    while (this.#finished.length - this.#finishedHead > this.#maxFinishedRuns) this.#forgetOldest();
    this.#emit(envelope);
    return this.#typed(envelope);
  }

  // ---- reader side (RunEventSource) -----------------------------------------------------

  getRun(runId: string): State | undefined {
    return this.#run(runId)?.state as State | undefined;
  }

  listRuns(): State[] {
    this.#forgetExpired();
    const active: State[] = [];
    for (const { state } of this.#runs.values()) if (!isTerminalStatus(state.status)) active.push(state as State);
    return active;
  }

  /** States with their cursor: the global history's newest id, or for one run its log's newest id. */
  snapshot(runId?: string): RunSnapshot<State> | undefined {
    if (runId === undefined) return { states: this.listRuns(), cursor: this.lastId };
    const record = this.#run(runId);
    return record === undefined ? undefined : { states: [record.state as State], cursor: this.#id(record.log.lastSeq) };
  }

  getCompletion(runId: string): Envelope<State, Event> | undefined {
    const completion = this.#run(runId)?.completion;
    return completion === undefined ? undefined : this.#typed(completion);
  }

  /** A page of one run's log or of the global history (see {@link RunEventSource.readLog}). */
  readLog(query: LogQuery): LogPage<State, Event> | LogGap | undefined {
    return this.#readLog(query) as LogPage<State, Event> | LogGap | undefined;
  }

  #readLog(query: LogQuery): LogPage | LogGap | undefined {
    const limit = Math.max(1, Math.floor(query.limit));
    if (query.runId === undefined) return this.#readHistory(query.after, limit);
    const record = this.#run(query.runId);
    if (record === undefined) return undefined;
    const { log } = record;
    if (query.after === undefined) {
      return log.complete ? { envelopes: log.page(log.start, limit) } : { gap: "trimmed" };
    }
    const seq = this.#seqOf(query.after);
    if (seq === undefined) return { gap: "unknown_id" };
    const at = log.indexOf(seq);
    if (at >= 0) return { envelopes: log.page(at + 1, limit) };
    // Older than what is kept, yet not older than the run itself: trimmed away.
    return !log.complete && seq >= log.firstSeq && seq < log.oldestSeq ? { gap: "trimmed" } : { gap: "unknown_id" };
  }

  subscribe(listener: (envelope: Envelope<State, Event>) => void): () => void {
    // Every envelope announced was built from the writer calls' input, typed by `State` and `Event`.
    const untyped = listener as (envelope: Envelope) => void;
    this.#listeners.add(untyped);
    return () => {
      this.#listeners.delete(untyped);
    };
  }

  /**
   * Every envelope after `afterId` (of one run's log when `runId` is given, else of the
   * global history) in one array, or `null` when the log cannot serve it. runcast itself
   * reads {@link readLog} in pages; this stays for callers of the older contract.
   */
  replay(afterId: string, runId?: string): Envelope<State, Event>[] | null {
    const out: Envelope<State, Event>[] = [];
    let after = afterId;
    for (;;) {
      const page = this.readLog({ runId, after, limit: 1024 });
      if (page === undefined || "gap" in page) return null;
      out.push(...page.envelopes);
      const last = page.envelopes[page.envelopes.length - 1];
      if (page.envelopes.length < 1024 || last?.id === undefined) return out;
      after = last.id;
    }
  }

  compareIds(a: string, b: string): number {
    return compareEnvelopeIds(a, b);
  }

  /** The id of the newest envelope, or `undefined` before the first one. */
  get lastId(): string | undefined {
    return this.#seq === 0 ? undefined : this.#id(this.#seq);
  }

  // ---- internals --------------------------------------------------------------------------

  /** A run still remembered (finished runs past their TTL are forgotten first). */
  #run(runId: string): RunRecord | undefined {
    this.#forgetExpired();
    return this.#runs.get(runId);
  }

  #forgetOldest(): void {
    const oldest = this.#finished[this.#finishedHead];
    if (oldest === undefined) return;
    this.#finished[this.#finishedHead++] = undefined;
    this.#runs.delete(oldest.runId);
    if (this.#finishedHead >= 1024 && this.#finishedHead * 2 >= this.#finished.length) {
      this.#finished = this.#finished.slice(this.#finishedHead);
      this.#finishedHead = 0;
    }
  }

  /** Forgets finished runs older than `finishedRunTtlMs`: they finished in order, so only the oldest are checked. */
  #forgetExpired(): void {
    if (this.#finishedRunTtlMs === undefined) return;
    const horizon = Date.now() - this.#finishedRunTtlMs;
    for (;;) {
      const oldest = this.#finished[this.#finishedHead];
      if (oldest === undefined || oldest.at > horizon) return;
      this.#forgetOldest();
    }
  }

  /** The global history's page after `after`, or why it cannot serve it. */
  #readHistory(after: string | undefined, limit: number): LogPage | LogGap {
    const oldest = this.#seq - Math.min(this.#seq, this.#historySize) + 1;
    let from = oldest;
    if (after !== undefined) {
      const seq = this.#seqOf(after);
      if (seq === undefined) return { gap: "unknown_id" };
      if (seq < oldest - 1) return { gap: "trimmed" };
      from = seq + 1;
    }
    const envelopes: Envelope[] = [];
    for (let s = from; s <= this.#seq && envelopes.length < limit; s++) {
      envelopes.push(this.#history[s % this.#historySize] as Envelope);
    }
    return { envelopes };
  }

  #activeRun(runId: string): RunRecord {
    const record = this.#run(runId);
    if (record === undefined) throw new RuncastError("run_not_found", `run ${JSON.stringify(runId)} does not exist`);
    if (isTerminalStatus(record.state.status)) {
      throw new RuncastError("run_finished", `run ${runId} is already ${record.state.status}`);
    }
    return record;
  }

  /**
   * An envelope as the host's types: the store keeps what the writer calls validated, whose
   * custom fields came typed by `State` and `Event`.
   */
  #typed(envelope: Envelope): Envelope<State, Event> {
    return envelope as Envelope<State, Event>;
  }

  #id(seq: number): string {
    return `${this.#epoch}-${seq}`;
  }

  /**
   * The sequence number of one of this instance's ids, in its one canonical spelling only
   * (`<epoch>-<seq>`, no leading zeros, no exponent), and only up to the newest: anything
   * else is not an id of ours, whatever number it might be read as.
   */
  #seqOf(id: string): number | undefined {
    const match = typeof id === "string" ? MEMORY_ID.exec(id) : null;
    if (match === null || match[1] !== String(this.#epoch)) return undefined;
    const seq = Number(match[2]);
    return Number.isSafeInteger(seq) && seq <= this.#seq ? seq : undefined;
  }

  /**
   * Assigns the next id and keeps the envelope in the history. Its parts were validated by the
   * writer call (state or event), and the call built it so that `data` names `runId`: parsing
   * the whole envelope again would only repeat that work.
   */
  #record(envelope: Envelope): Envelope {
    this.#seq += 1;
    // Frozen, as its data is: the router takes what this source hands it as validated, so
    // nothing may change it afterwards (a daemon writing into what a writer call returned).
    const recorded: Envelope = Object.freeze({ ...envelope, id: this.#id(this.#seq) });
    this.#history[this.#seq % this.#historySize] = recorded;
    return recorded;
  }

  #announce(record: RunRecord, envelope: Envelope): Envelope {
    const recorded = this.#record(envelope);
    record.log.append(this.#seq, recorded);
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
