import type { Envelope, RunEvent, RunState } from "./schema";

/** A value, or a promise of it: adapters may answer synchronously or not. */
export type MaybePromise<T> = T | Promise<T>;

/**
 * A consistent view of one run or of all active runs, together with its cursor: the id of
 * the newest envelope the states already reflect, read atomically with them.
 */
export interface RunSnapshot<State extends RunState = RunState> {
  /** One run's state (per-run snapshot), or every active run's (global snapshot). */
  states: State[];
  /** Id of the newest envelope already reflected in `states`; absent when nothing was recorded yet. */
  cursor?: string | undefined;
}

/**
 * Why a resume cannot be served exactly from a log, as sent in the `resync` frame:
 * `trimmed` when the log no longer reaches back that far (or, from the start, to the run's
 * first envelope); `unknown_id` when the id is not one of the log's (another process's or
 * deployment's, malformed, or made up).
 */
export type ResyncReason = "trimmed" | "unknown_id";

/** What {@link RunEventSource.readLog} is asked for. */
export interface LogQuery {
  /** One run's log; absent for the global history (every run's envelopes in id order). */
  runId?: string | undefined;
  /**
   * Read after this envelope id. Absent: from the log's beginning, which for a run is its
   * first `state`; a run log that no longer starts there answers `{ gap: "trimmed" }`.
   */
  after?: string | undefined;
  /** The most envelopes to return (at least 1). */
  limit: number;
}

/** A page of a log: the envelopes after the query's position, oldest first, each with its id. */
export interface LogPage<State extends RunState = RunState, Event extends RunEvent = RunEvent> {
  /**
   * At most `limit` envelopes. Fewer than `limit` means the log held no more when it was
   * read; exactly `limit`, that the reader should ask again after the last one.
   */
  envelopes: Envelope<State, Event>[];
}

/** The log cannot serve the query exactly (see {@link ResyncReason}). */
export interface LogGap {
  gap: ResyncReason;
}

/**
 * A source's word that its live delivery lost continuity: envelopes were recorded that it
 * will never deliver (its history was trimmed past its reader during an outage), or its
 * history is gone (its store restarted empty). runcast then ends the affected streams so
 * that their clients resume, and get a `resync` where the log cannot serve them.
 */
export interface LiveGap {
  reason: "trimmed" | "history_lost";
  /** The one run concerned; absent when it concerns every run. */
  runId?: string | undefined;
  /** What happened, for the host's logs. */
  message: string;
}

/**
 * How far a source's live delivery is behind what was recorded, as last measured: the
 * envelopes recorded that its reader has not delivered to subscribers yet, and how much time
 * they span. Either may be absent when the source cannot tell.
 */
export interface SourceLag {
  /** Envelopes recorded but not yet delivered to subscribers (0 when caught up). */
  entries?: number;
  /** Time between the newest envelope delivered and the newest recorded, in ms (0 when caught up). */
  ms?: number;
}

/**
 * The event source adapter: what runcast needs from a job daemon. Implement it over your
 * own store, or use the bundled {@link MemoryRunSource} (in-process) or `RedisRunSource`
 * (`runcast/redis`, several processes).
 *
 * `State` and `Event` are the host's own types of run states and events, with its custom
 * fields (see `Envelope`); the built-in `RunState` and `RunEvent` by default. runcast takes
 * them on trust: its checks cover the built-in fields, and extra fields pass through.
 */
export interface RunEventSource<State extends RunState = RunState, Event extends RunEvent = RunEvent> {
  /** The run's current state, or `undefined` when the run is unknown. */
  getRun(runId: string): MaybePromise<State | undefined>;
  /** The active (non-terminal) runs, announced on the global stream when a client connects. */
  listRuns(): MaybePromise<State[]>;
  /**
   * Starts delivering live envelopes, in id order, to `listener`. Returns the function that
   * stops it. runcast subscribes once per router, whatever its number of clients. A source
   * that can lose continuity (a networked one) calls `onGap` when it did (see {@link LiveGap}).
   */
  subscribe(listener: (envelope: Envelope<State, Event>) => void, onGap?: (gap: LiveGap) => void): () => void;
  /**
   * The envelopes after `afterId`, oldest first: of one run when `runId` is given, of all
   * runs otherwise. Answers `null` when the history no longer reaches back to `afterId` or
   * does not know it; runcast then sends a `resync` and a fresh snapshot instead. Used for
   * resumes only when the source has no `readLog`, which serves them in pages.
   */
  replay?(
    afterId: string,
    runId?: string,
  ): AsyncIterable<Envelope<State, Event>> | MaybePromise<Envelope<State, Event>[] | null>;
  /** A finished run's `complete` envelope, id included; `undefined` while the run is active or unknown. */
  getCompletion?(runId: string): MaybePromise<Envelope<State, Event> | undefined>;
  /**
   * States and their cursor, read atomically: one run's (`undefined` when unknown) or, with
   * no `runId`, every active run's. One run's cursor is the id of that run's newest envelope
   * (an id of its log, so a client can resume its run stream from it); the global cursor is
   * the newest envelope of the global history. Without it runcast reads `getRun`/`listRuns` and sends
   * snapshot frames with no id, so it cannot tell which live envelopes a snapshot already
   * reflects.
   */
  snapshot?(runId?: string): MaybePromise<RunSnapshot<State> | undefined>;
  /**
   * Reads a log one page at a time: one run's (`runId`) or the global history, after an
   * envelope id or (for a run) from its first envelope. runcast uses it for `?from=start`,
   * for every resume with `Last-Event-ID`, in pages of `limit` with the socket drained in
   * between, so a resume costs what the client missed and never holds a whole log in memory.
   * Reading one run's log must not read other runs' envelopes.
   *
   * Answers a {@link LogPage}; a {@link LogGap} when the log cannot serve the position
   * exactly; `undefined` when the run is unknown. A resume id must be one the source
   * recognises as an id of that log (compare ids of one canonical spelling only).
   * Without it runcast falls back to `replay` for resumes, and answers `?from=start` with a
   * `resync` and a snapshot.
   */
  readLog?(query: LogQuery): MaybePromise<LogPage<State, Event> | LogGap | undefined>;
  /**
   * Orders two envelope ids (negative, zero, positive). Defaults to {@link compareEnvelopeIds},
   * which understands decimal counters and `<ms>-<seq>` ids such as Redis stream ids.
   */
  compareIds?(a: string, b: string): number;
  /**
   * How far live delivery is behind the newest recorded envelope, as last measured
   * (`undefined` when not measured yet). Called for `stats()` and metrics scrapes, so it must
   * be cheap and synchronous: a networked source measures on its own schedule and answers its
   * latest figure. A source whose delivery cannot lag (it delivers as it records) leaves it out.
   */
  lag?(): SourceLag | undefined;
}

/**
 * Where a numeric id (`N` or `N-M`, decimal digits) has its `-` (its length when it has
 * none), or -1 when it is not one. A scan, not a regular expression: every live envelope's
 * id is compared on arrival.
 */
function numericSplit(id: string): number {
  let dash = id.length;
  for (let i = 0; i < id.length; i++) {
    const c = id.charCodeAt(i);
    if (c >= 48 && c <= 57) continue;
    if (c !== 45 || dash !== id.length || i === 0 || i === id.length - 1) return -1;
    dash = i;
  }
  return id.length === 0 ? -1 : dash;
}

/** Compares two runs of decimal digits numerically, leading zeros aside, however long; an empty run is 0. */
function compareDigits(a: string, aFrom: number, aTo: number, b: string, bFrom: number, bTo: number): number {
  if (aFrom === aTo) return bFrom === bTo ? 0 : compareDigits("0", 0, 1, b, bFrom, bTo);
  if (bFrom === bTo) return compareDigits(a, aFrom, aTo, "0", 0, 1);
  while (aFrom < aTo - 1 && a.charCodeAt(aFrom) === 48) aFrom++;
  while (bFrom < bTo - 1 && b.charCodeAt(bFrom) === 48) bFrom++;
  if (aTo - aFrom !== bTo - bFrom) return aTo - aFrom - (bTo - bFrom);
  for (let i = 0; i < aTo - aFrom; i++) {
    const d = a.charCodeAt(aFrom + i) - b.charCodeAt(bFrom + i);
    if (d !== 0) return d < 0 ? -1 : 1;
  }
  return 0;
}

/**
 * The default envelope id order: ids of the form `N` or `N-M` (decimal, as Redis stream ids
 * and {@link MemoryRunSource} ids are) compare numerically part by part, a missing `M` as 0;
 * anything else compares as plain strings.
 */
export function compareEnvelopeIds(a: string, b: string): number {
  const x = numericSplit(a);
  const y = numericSplit(b);
  if (x < 0 || y < 0) return a < b ? -1 : a > b ? 1 : 0;
  const major = compareDigits(a, 0, x, b, 0, y);
  if (major !== 0) return major;
  // `N` has no minor part: an empty range, which compares as 0.
  return compareDigits(a, Math.min(x + 1, a.length), a.length, b, Math.min(y + 1, b.length), b.length);
}
