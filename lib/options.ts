import type { Request } from "express";
import { RuncastError } from "./errors";
import { MAX_TIMER_MS } from "./timeout";
import { type StreamTokenOptions, secretKey } from "./tokens";
import type { StreamScope } from "./view";

/** Where a problem reported to `onError` happened. */
export type ErrorPhase = "envelope" | "replay" | "snapshot" | "source" | "authorize" | "gap" | "close" | "delivery";

/** What `onError` is told besides the error itself. */
export interface ErrorContext {
  phase: ErrorPhase;
  /** The run concerned, when there is one. */
  runId?: string | undefined;
  /** The rejected value, for `envelope` and `replay` errors. */
  envelope?: unknown;
}

/** Options of `sseRouter`; all optional. */
export interface SseRouterOptions {
  /**
   * Prefix of both endpoints: `{basePath}/runs/:id/stream` and `{basePath}/stream`. A router
   * mounted at a path that already ends with it (`app.use("/api", guard, sse.runs)`) does not
   * expect it again. @default "/api"
   */
  basePath?: string | undefined;
  /**
   * Interval of the heartbeat sent to every client, in ms: a comment line, or a `heartbeat`
   * frame for streams requested with `?heartbeat=event`. At most 2147483647 (a Node timer's
   * limit). @default 30000
   */
  heartbeatMs?: number | undefined;
  /**
   * Reconnect delay suggested to clients (`retry:`) when a stream opens, in ms. Each
   * connection gets its own value, drawn uniformly from [0.5 × retryMs, 1.5 × retryMs], so
   * clients ended together do not reconnect together. @default 3000
   */
  retryMs?: number | undefined;
  /**
   * Ends each stream after a jittered while, drawn per stream uniformly from
   * [0.75 × maxStreamMs, maxStreamMs], in ms; its client resumes exactly (`Last-Event-ID`),
   * possibly on another process: rebalances clients behind a load balancer. At most
   * 2147483647. @default undefined (streams last)
   */
  maxStreamMs?: number | undefined;
  /**
   * Least time between two writes of live frames to the clients, in ms. The first frame after
   * a quiet spell still goes out at the end of its event-loop turn; frames that follow within
   * `coalesceMs` of that write wait and go out together, one write per client. For runs that
   * emit many events a second (log lines, progress), this trades up to `coalesceMs` of latency
   * for far fewer writes: each write to a socket costs the server about as much as the bytes
   * of several small frames. Held frames past `maxBufferedBytes` of text in all go out at
   * once. 0 writes at the end of every turn in which frames arrived. At most 2147483647.
   * @default 0
   */
  coalesceMs?: number | undefined;
  /** A client whose unsent backlog passes this many bytes is disconnected (it reconnects and replays). @default 1048576 */
  maxBufferedBytes?: number | undefined;
  /**
   * Memory for the newest frames as they arrive from the source, in characters of frame text
   * (bytes for ASCII): a resume (`Last-Event-ID`, either stream) from an id still held there is
   * served from memory, without reading the source's log, so a reconnect storm after a deploy
   * or a network blip costs the source nothing. The oldest frames go first; a run's log is read
   * as usual for anything older. 0 turns it off. @default 16777216 (16 MiB)
   */
  resumeCacheBytes?: number | undefined;
  /** Most clients, both streams together; more are refused with 503 `too_many_clients`. @default Infinity */
  maxClients?: number | undefined;
  /**
   * How long `authorize` may take, and then how long the source reads that start a stream
   * (`getRun`, `snapshot`, `listRuns`, `replay`, `getCompletion`) may take together, in ms.
   * Past it the request gets 503 `unavailable` with `Retry-After`, its `maxClients` slot is
   * freed, and `onError` is told (phase `authorize` or `source`); a late answer is ignored.
   * Each further page of a resume (`readLog`) gets as long: one that hangs ends that stream
   * (phase `replay`) and the client resumes. `Infinity` waits as long as it takes.
   * @default 10000
   */
  sourceTimeoutMs?: number | undefined;
  /**
   * Decides whether a request may open a stream: `runId` is the run, or `null` for the global
   * stream. Answer (or resolve) `true` to allow it, `false` to refuse with 403 `forbidden`, or
   * a {@link StreamScope} `{ tags?, runs? }`: the client then sees only the runs carrying one
   * of `tags` or listed in `runs` (a run's stream outside it is 403). Runs after the stream
   * token, if any; a throw or an invalid scope is a 500.
   * @default undefined (every request is allowed)
   */
  authorize?:
    | ((req: Request, runId: string | null) => boolean | StreamScope | Promise<boolean | StreamScope>)
    | undefined;
  /**
   * Stream tokens (see `createStreamToken`): when set, every stream request must carry a valid
   * token, as `?token=` or `Authorization: Bearer`, else 401 `invalid_token`/`token_expired`;
   * its scope limits what the client sees, and its stream ends when it expires. The secret
   * must be at least 32 bytes.
   * @default undefined (no tokens)
   */
  tokens?: StreamTokenOptions | undefined;
  /**
   * Told of every problem that is not the client's: invalid envelopes (which are dropped),
   * source failures, `authorize` throwing, a source's word that live delivery lost continuity
   * (`gap`: the streams concerned were ended so their clients resume), adapter code throwing
   * while frames are delivered (`delivery`: the one client concerned is disconnected), and a
   * stream that failed to end on `close()` (`close`). Defaults to `console.error`.
   */
  onError?: ((error: unknown, context: ErrorContext) => void) | undefined;
}

/** Options with their defaults applied. */
export type ResolvedOptions = {
  [K in Exclude<keyof SseRouterOptions, "authorize" | "tokens" | "maxStreamMs">]-?: NonNullable<SseRouterOptions[K]>;
} & {
  authorize: SseRouterOptions["authorize"];
  maxStreamMs: SseRouterOptions["maxStreamMs"];
  /** The token secret's bytes, when tokens are on. */
  tokenKey: Uint8Array | undefined;
};

/** Option defaults. */
export const DEFAULTS = {
  basePath: "/api",
  heartbeatMs: 30_000,
  retryMs: 3_000,
  maxBufferedBytes: 1024 * 1024,
  maxClients: Number.POSITIVE_INFINITY,
  sourceTimeoutMs: 10_000,
  resumeCacheBytes: 16 * 1024 * 1024,
  coalesceMs: 0,
} as const;

/** An option that must be a positive integer (or, with `allowInfinity`, `Infinity`), else `invalid_option`. */
export function positiveInteger(
  name: string,
  value: number | undefined,
  fallback: number,
  allowInfinity = false,
): number {
  if (value === undefined) return fallback;
  const ok =
    typeof value === "number" &&
    value > 0 &&
    (Number.isSafeInteger(value) || (allowInfinity && value === Number.POSITIVE_INFINITY));
  if (!ok) throw new RuncastError("invalid_option", `${name} must be a positive integer, got ${String(value)}`);
  return value;
}

/** An option that must be a whole number, 0 or more, else `invalid_option`. */
function nonNegativeInteger(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 0) {
    throw new RuncastError("invalid_option", `${name} must be a non-negative integer, got ${String(value)}`);
  }
  return value;
}

/**
 * A delay for a timer: a positive integer up to what a Node timer can wait (a longer one
 * fires at once), or, with `allowInfinity`, `Infinity` for none.
 */
function timerDelay(name: string, value: number | undefined, fallback: number, allowInfinity = true): number {
  const delay = positiveInteger(name, value, fallback, allowInfinity);
  if (delay !== Number.POSITIVE_INFINITY && delay > MAX_TIMER_MS) {
    const or = allowInfinity ? " (or Infinity)" : "";
    throw new RuncastError("invalid_option", `${name} must be at most ${MAX_TIMER_MS}${or}, got ${delay}`);
  }
  return delay;
}

/** A delay that may also be 0 (none): a non-negative integer up to what a Node timer can wait. */
function delayOrNone(name: string, value: number | undefined, fallback: number): number {
  const delay = nonNegativeInteger(name, value, fallback);
  if (delay > MAX_TIMER_MS)
    throw new RuncastError("invalid_option", `${name} must be at most ${MAX_TIMER_MS}, got ${delay}`);
  return delay;
}

/** Checks options once, when the router is created, and applies defaults. */
export function resolveOptions(options: SseRouterOptions = {}): ResolvedOptions {
  let basePath = options.basePath ?? DEFAULTS.basePath;
  if (typeof basePath !== "string" || (basePath !== "" && !/^\/[^?#\s]*$/.test(basePath))) {
    throw new RuncastError(
      "invalid_option",
      `basePath must be empty or start with "/", got ${JSON.stringify(basePath)}`,
    );
  }
  basePath = basePath.replace(/\/+$/, "");
  if (options.authorize !== undefined && typeof options.authorize !== "function") {
    throw new RuncastError("invalid_option", "authorize must be a function");
  }
  if (options.onError !== undefined && typeof options.onError !== "function") {
    throw new RuncastError("invalid_option", "onError must be a function");
  }
  if (options.tokens !== undefined && (options.tokens === null || typeof options.tokens !== "object")) {
    throw new RuncastError("invalid_option", "tokens must be an object: { secret }");
  }
  const tokenKey = options.tokens === undefined ? undefined : secretKey(options.tokens.secret, "tokens.secret");
  return {
    basePath,
    heartbeatMs: timerDelay("heartbeatMs", options.heartbeatMs, DEFAULTS.heartbeatMs, false),
    retryMs: positiveInteger("retryMs", options.retryMs, DEFAULTS.retryMs),
    maxBufferedBytes: positiveInteger("maxBufferedBytes", options.maxBufferedBytes, DEFAULTS.maxBufferedBytes),
    maxClients: positiveInteger("maxClients", options.maxClients, DEFAULTS.maxClients, true),
    resumeCacheBytes: nonNegativeInteger("resumeCacheBytes", options.resumeCacheBytes, DEFAULTS.resumeCacheBytes),
    coalesceMs: delayOrNone("coalesceMs", options.coalesceMs, DEFAULTS.coalesceMs),
    sourceTimeoutMs: timerDelay("sourceTimeoutMs", options.sourceTimeoutMs, DEFAULTS.sourceTimeoutMs),
    maxStreamMs:
      options.maxStreamMs === undefined ? undefined : timerDelay("maxStreamMs", options.maxStreamMs, 0, false),
    authorize: options.authorize,
    tokenKey,
    onError: options.onError ?? ((error, context) => console.error("runcast:", context, error)),
  };
}

/** What `close()` takes. */
export interface CloseOptions {
  /**
   * Spread the ends of the streams over this many ms instead of ending them all at once: each
   * ends at a random moment of its own share of the window, so its client's reconnect (to this
   * deployment's other processes) is spread as well. 0 ends them all now. @default 0
   */
  drainMs?: number | undefined;
}

/** `close()`'s `drainMs` checked: a non-negative whole number of ms, else `invalid_option`. */
export function resolveDrainMs(options: CloseOptions | undefined): number {
  return nonNegativeInteger("drainMs", options?.drainMs, 0);
}
