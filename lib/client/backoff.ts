/**
 * Reconnect delays: exponential backoff with jitter.
 *
 * @packageDocumentation
 */

/** Delay before the first attempt to reopen a stream, in ms. */
export const DEFAULT_RETRY_MS = 1_000;
/** Longest delay between attempts to reopen a stream, before jitter, in ms. */
export const DEFAULT_MAX_RETRY_MS = 30_000;

/**
 * The delay before attempt number `failures` (1 for the first after a stream was open):
 * `retryMs * 2^(failures - 1)`, at most `maxRetryMs`, then jittered uniformly into
 * `[delay / 2, delay]`, so that many clients that lost the same server come back spread out
 * rather than in one instant.
 *
 * @param random - A number in `[0, 1)`; `Math.random()` by default.
 */
export function reconnectDelay(failures: number, retryMs: number, maxRetryMs: number, random = Math.random()): number {
  const delay = Math.min(maxRetryMs, retryMs * 2 ** Math.min(Math.max(failures, 1) - 1, 30));
  return delay / 2 + (delay / 2) * random;
}
