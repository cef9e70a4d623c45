import type { StartOutcome } from "./start";

/**
 * Why the server ended a stream (the client's own disconnects are not counted):
 * - `complete`: the run completed (per-run streams end after its `complete`);
 * - `slow`: the client's backlog passed `maxBufferedBytes`, or a starting stream did not drain;
 * - `drain`: `close()` ended it (with or without `drainMs`);
 * - `max_duration`: it reached its share of `maxStreamMs`;
 * - `token_expiry`: the stream token it was opened with expired (router option `tokens`);
 * - `gap`: the source lost continuity under it (its log moved on during a resume, or live
 *   delivery skipped envelopes): the client resumes and learns of it through `resync`;
 * - `error`: a source read failed while the stream was starting, or adapter code run for this
 *   client (a custom `compareIds`) threw.
 */
export type EndReason = "complete" | "slow" | "drain" | "max_duration" | "token_expiry" | "gap" | "error";

/** Every {@link EndReason}, in a fixed order (metrics label values). */
export const END_REASONS: readonly EndReason[] = [
  "complete",
  "slow",
  "drain",
  "max_duration",
  "token_expiry",
  "gap",
  "error",
];

/** Every {@link StartOutcome}, in a fixed order (metrics label values). */
export const START_OUTCOMES: readonly StartOutcome[] = ["fresh", "replayed", "resync"];

/** Upper bounds of the replay size buckets, in frames. */
export const REPLAY_SIZE_BUCKETS: readonly number[] = [0, 1, 10, 100, 1_000, 10_000, 100_000];

/** Replay sizes as a histogram: frames written from the log by each resume served from it. */
export interface ReplaySizeStats {
  /**
   * One entry per upper bound of {@link REPLAY_SIZE_BUCKETS}: how many resumes wrote at most
   * `le` frames (cumulative, as Prometheus buckets are). Resumes above the last bound count
   * only in `count`.
   */
  buckets: { le: number; count: number }[];
  /** Frames written by all resumes together. */
  sum: number;
  /** Resumes served from the log. */
  count: number;
}

/** The counters a router keeps besides the hub's; see `SseRouter#stats`. */
export class RouterCounters {
  readonly ended: Record<EndReason, number> = {
    complete: 0,
    slow: 0,
    drain: 0,
    max_duration: 0,
    token_expiry: 0,
    gap: 0,
    error: 0,
  };
  readonly starts: Record<StartOutcome, number> = { fresh: 0, replayed: 0, resync: 0 };
  /** Resumes that began from the router's memory of recent frames. */
  heldResumes = 0;
  invalidEnvelopes = 0;
  sourceErrors = 0;
  readonly #replayBuckets: number[] = REPLAY_SIZE_BUCKETS.map(() => 0);
  #replaySum = 0;
  #replayCount = 0;

  /** A resume served from the log wrote `frames` frames. */
  observeReplay(frames: number): void {
    this.#replayCount++;
    this.#replaySum += frames;
    const bucket = REPLAY_SIZE_BUCKETS.findIndex((le) => frames <= le);
    if (bucket >= 0) this.#replayBuckets[bucket] = (this.#replayBuckets[bucket] ?? 0) + 1;
  }

  replaySizes(): ReplaySizeStats {
    let cumulative = 0;
    const buckets = REPLAY_SIZE_BUCKETS.map((le, i) => {
      cumulative += this.#replayBuckets[i] ?? 0;
      return { le, count: cumulative };
    });
    return { buckets, sum: this.#replaySum, count: this.#replayCount };
  }
}
