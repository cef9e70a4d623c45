/** The longest delay a Node timer can wait; a longer one would fire at once. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** How {@link settleWithin} ended: with the work's value, or with the time up first. */
export type Settled<T> = { timedOut: false; value: T } | { timedOut: true };

/**
 * Waits for `work` at most `ms` (`Infinity`: as long as it takes). A failure within the time
 * is thrown; an answer or failure after it is ignored, never an unhandled rejection. The
 * timer is cleared as soon as `work` settles, so none outlives it.
 */
export function settleWithin<T>(work: T | Promise<T>, ms: number): Promise<Settled<T>> {
  const settled = Promise.resolve(work).then((value): Settled<T> => ({ timedOut: false, value }));
  if (ms === Number.POSITIVE_INFINITY) return settled;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => resolve({ timedOut: true }), ms);
    settled.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (error: unknown) => {
        clearTimeout(timer);
        reject(error);
      },
    );
  });
}
