import type { Envelope, RunState } from "./schema";

/** A value, or a promise of it: adapters may answer synchronously or not. */
export type MaybePromise<T> = T | Promise<T>;

/**
 * A consistent view of one run or of all active runs, together with its cursor: the id of
 * the newest envelope the states already reflect, read atomically with them.
 */
export interface RunSnapshot {
  /** One run's state (per-run snapshot), or every active run's (global snapshot). */
  states: RunState[];
  /** Id of the newest envelope already reflected in `states`; absent when nothing was recorded yet. */
  cursor?: string;
}

/**
 * The event source adapter: what runcast needs from a job daemon. Implement it over your
 * own store, or use the bundled {@link MemoryRunSource} (in-process) or `RedisRunSource`
 * (`runcast/redis`, several processes).
 */
export interface RunEventSource {
  /** The run's current state, or `undefined` when the run is unknown. */
  getRun(runId: string): MaybePromise<RunState | undefined>;
  /** The active (non-terminal) runs, announced on the global stream when a client connects. */
  listRuns(): MaybePromise<RunState[]>;
  /**
   * Starts delivering live envelopes, in id order, to `listener`. Returns the function that
   * stops it. runcast subscribes once per router, whatever its number of clients.
   */
  subscribe(listener: (envelope: Envelope) => void): () => void;
  /**
   * The envelopes after `afterId`, oldest first: of one run when `runId` is given, of all
   * runs otherwise. Answers `null` when the history no longer reaches back to `afterId` or
   * does not know it; runcast then sends a fresh snapshot instead.
   */
  replay?(afterId: string, runId?: string): AsyncIterable<Envelope> | MaybePromise<Envelope[] | null>;
  /** A finished run's `complete` envelope, id included; `undefined` while the run is active or unknown. */
  getCompletion?(runId: string): MaybePromise<Envelope | undefined>;
  /**
   * States and their cursor, read atomically: one run's (`undefined` when unknown) or, with
   * no `runId`, every active run's. Without it runcast reads `getRun`/`listRuns` and sends
   * snapshot frames with no id, so it cannot tell which live envelopes a snapshot already
   * reflects.
   */
  snapshot?(runId?: string): MaybePromise<RunSnapshot | undefined>;
  /**
   * Orders two envelope ids (negative, zero, positive). Defaults to {@link compareEnvelopeIds},
   * which understands decimal counters and `<ms>-<seq>` ids such as Redis stream ids.
   */
  compareIds?(a: string, b: string): number;
}

const NUMERIC_ID = /^(\d+)(?:-(\d+))?$/;

function compareDigits(a: string, b: string): number {
  const x = a.replace(/^0+(?=\d)/, "");
  const y = b.replace(/^0+(?=\d)/, "");
  if (x.length !== y.length) return x.length - y.length;
  return x < y ? -1 : x > y ? 1 : 0;
}

/**
 * The default envelope id order: ids of the form `N` or `N-M` (decimal, as Redis stream ids
 * and {@link MemoryRunSource} ids are) compare numerically part by part; anything else
 * compares as plain strings.
 */
export function compareEnvelopeIds(a: string, b: string): number {
  const x = NUMERIC_ID.exec(a);
  const y = NUMERIC_ID.exec(b);
  if (x === null || y === null) return a < b ? -1 : a > b ? 1 : 0;
  const major = compareDigits(x[1] ?? "0", y[1] ?? "0");
  if (major !== 0) return major;
  return compareDigits(x[2] ?? "0", y[2] ?? "0");
}
