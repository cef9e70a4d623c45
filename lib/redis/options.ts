/** `RedisRunSource`'s options and defaults, and what it tells `onError`. */
import type { Redis } from "ioredis";

/** Default Redis address. */
export const DEFAULT_REDIS_URL = "redis://127.0.0.1:6379";
/** Default key prefix. */
export const DEFAULT_REDIS_PREFIX = "runcast";
/** Default length the envelope stream is trimmed to (`XADD ... MAXLEN ~`). */
export const DEFAULT_REDIS_HISTORY_SIZE = 10_000;
/** Default number of finished runs kept readable. */
export const DEFAULT_REDIS_MAX_FINISHED_RUNS = 1_000;
/** Default number of envelopes kept in each run's log (`XADD ... MAXLEN`, exact). */
export const DEFAULT_REDIS_MAX_RUN_LOG_SIZE = 5_000;
/** Default time a command may wait for Redis's answer before Redis is reported unresponsive, in ms. */
export const DEFAULT_UNRESPONSIVE_MS = 10_000;
/**
 * Default time a write's outcome is remembered for, in ms. ioredis keeps unanswered commands
 * for at most `maxRetriesPerRequest` (20) reconnect attempts, about a minute and a half with
 * its default backoff; five minutes leaves a wide margin.
 */
export const DEFAULT_RESEND_WINDOW_MS = 300_000;
/** Default most entries one `XREAD` returns. */
export const DEFAULT_READ_COUNT = 100;
/** Default time one `XREAD` blocks waiting for entries, in ms. */
export const DEFAULT_BLOCK_MS = 5_000;

/** Where a problem reported to {@link RedisRunSourceOptions.onError} happened. */
export type RedisErrorPhase =
  /** A connection to Redis failed, closed, or stopped answering; it recovers on its own. */
  | "connection"
  /**
   * The live reader's `XREAD` failed (it tries again from the last id it delivered), or the
   * reader found after an outage that the feed was trimmed past it or lost its data (the
   * subscriber's `onGap` is told as well).
   */
  | "read"
  /** A stream entry could not be turned into an envelope; it is skipped. */
  | "entry"
  /** A subscriber threw; the others still get the envelope. */
  | "listener";

/** What `onError` is told besides the error itself. */
export interface RedisErrorContext {
  phase: RedisErrorPhase;
  /** Which of the source's connections: `commands` (writes and reads) or `reader` (the blocking live reader). */
  connection?: "commands" | "reader" | undefined;
}

/** Options of {@link RedisRunSource}. */
export interface RedisRunSourceOptions {
  /**
   * Redis address (`redis://[[user]:password@]host[:port][/db]`, `rediss://` for TLS).
   * Ignored when `redis` is given.
   * @default "redis://127.0.0.1:6379"
   */
  url?: string | undefined;
  /**
   * An ioredis client to copy the connection settings from: the source `duplicate()`s it for
   * its own connections and never closes it.
   */
  redis?: Redis | undefined;
  /**
   * Prefix of every key, so several deployments share one Redis: `<prefix>:log`,
   * `<prefix>:run:{<id>}`, ... (1 to 128 printable characters without spaces or braces: a brace
   * would change the runs' hash tags). With a client given as `redis` that has a `keyPrefix`,
   * keys start with that (keep braces out of it too), then this.
   * @default "runcast"
   */
  prefix?: string | undefined;
  /**
   * How many envelopes (of all runs together) the global feed keeps, for resumes of the
   * global stream. Trimming is approximate (`MAXLEN ~`): Redis drops whole nodes, so a few
   * more may stay. Per-run streams resume from their run's log instead (`maxRunLogSize`).
   * @default 10000
   */
  historySize?: number | undefined;
  /**
   * How many envelopes each run's log keeps (its oldest go first; trimmed exactly, `MAXLEN`),
   * while the run is active and, once finished, for as long as the run is remembered. A busy
   * run never pushes another run's envelopes out.
   * @default 5000
   */
  maxRunLogSize?: number | undefined;
  /**
   * How many finished runs stay readable (state, log and `complete` envelope) before the
   * oldest is forgotten whole. Active runs are never forgotten.
   * @default 1000
   */
  maxFinishedRuns?: number | undefined;
  /**
   * When set, a finished run is also forgotten this long (ms) after its `complete`: both its
   * keys get this TTL (`PEXPIRE`). Unset, finished runs stay until `maxFinishedRuns` pushes
   * them out.
   * @default undefined (no expiry)
   */
  finishedRunTtlMs?: number | undefined;
  /**
   * How long, in ms, each write's outcome stays in Redis under its write id, so a command
   * ioredis sends again after losing its reply returns the first outcome instead of
   * recording twice. Keep it above the longest outage your ioredis settings wait through.
   * @default 300000
   */
  resendWindowMs?: number | undefined;
  /**
   * Most entries the live reader takes per `XREAD`.
   * @default 100
   */
  readCount?: number | undefined;
  /**
   * How long, in ms, one `XREAD` of the live reader blocks waiting for entries.
   * @default 5000
   */
  blockMs?: number | undefined;
  /**
   * How long, in ms, a command may wait for Redis's answer on a connection that is up (the
   * live reader's `XREAD`: this long beyond `blockMs`) before Redis is reported unresponsive
   * to `onError` (`phase: "connection"`), once until it answers again. Nothing is cancelled:
   * a paused Redis that resumes answers everything.
   * @default 10000
   */
  unresponsiveMs?: number | undefined;
  /**
   * Told of connection losses (once per outage, with what happens next), a Redis that stops
   * answering, failed reads, history trimmed past the live reader or lost with Redis's data,
   * unreadable stream entries and subscribers that throw. The source recovers from all of
   * them by itself. Defaults to `process.emitWarning`.
   */
  onError?: ((error: Error, context: RedisErrorContext) => void) | undefined;
}
