/**
 * Random spreads that keep clients of one process from acting in the same instant: when they
 * reconnect (`retry:`), when a draining router ends them, when a long stream is ended.
 */

/** `retry:` is drawn per connection from `retryMs` times a factor in [1 - this, 1 + this]. */
export const RETRY_JITTER = 0.5;

/** A stream under `maxStreamMs` ends after `maxStreamMs` times a factor in [this, 1]. */
export const STREAM_LIFETIME_MIN_FACTOR = 0.75;

/**
 * One connection's reconnect delay: uniform in [`retryMs` × 0.5, `retryMs` × 1.5], whole ms,
 * at least 1. The mean stays `retryMs`; clients ended together come back spread over a window
 * as wide as `retryMs` instead of at one instant.
 */
export function jitteredRetryMs(retryMs: number, random: () => number = Math.random): number {
  const factor = 1 - RETRY_JITTER + 2 * RETRY_JITTER * random();
  return Math.max(1, Math.round(retryMs * factor));
}

/** How long one stream may last under `maxStreamMs`: uniform in [0.75, 1] × `maxStreamMs`, whole ms. */
export function streamLifetimeMs(maxStreamMs: number, random: () => number = Math.random): number {
  const factor = STREAM_LIFETIME_MIN_FACTOR + (1 - STREAM_LIFETIME_MIN_FACTOR) * random();
  return Math.max(1, Math.round(maxStreamMs * factor));
}

/**
 * When each of `count` clients ends during a drain of `drainMs`, in ms from its start, in
 * ascending order: the window is cut into `count` equal slots and each client ends at a random
 * moment of its own slot. The ends are as even as a steady rate (never two slots' worth at
 * once) yet not a fixed grid, and the spread of the first to the last covers all but at most
 * two slots of the window. Shuffle the clients before pairing them with these times.
 */
export function drainSchedule(count: number, drainMs: number, random: () => number = Math.random): number[] {
  const times: number[] = [];
  for (let i = 0; i < count; i++) times.push(((i + random()) / count) * drainMs);
  return times;
}

/** Shuffles `items` in place (Fisher-Yates) and returns them. */
export function shuffle<T>(items: T[], random: () => number = Math.random): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    const held = items[i] as T;
    items[i] = items[j] as T;
    items[j] = held;
  }
  return items;
}
