import { performance } from "node:perf_hooks";

/**
 * How long one turn of the event loop may spend starting streams (snapshots, replays) before
 * the rest waits for the next turn, in ms. Live fan-out and I/O run in between, so however many
 * clients resume at once, no one waits on them for much longer than this.
 */
export const TURN_BUDGET_MS = 8;

/** When the current turn's stream-start work began; `undefined` between turns. */
let turnStart: number | undefined;

function endTurn(): void {
  turnStart = undefined;
}

/**
 * Resolves on a later turn of the event loop, within the shared budget: every piece of work
 * that starts a stream awaits it first. Node runs all callbacks queued with `setImmediate`
 * back to back, without polling for I/O in between, so fifty resumes that each yield with a
 * plain `setImmediate` would still hold the loop for fifty pages; here, once a turn has spent
 * {@link TURN_BUDGET_MS}, the rest are put off to the next turn.
 */
export function nextTurn(): Promise<void> {
  return new Promise((resolve) => {
    const run = (): void => {
      const now = performance.now();
      if (turnStart === undefined) {
        turnStart = now;
        // Queued now, it runs first in the next turn's batch: the budget starts again there.
        setImmediate(endTurn);
      } else if (now - turnStart > TURN_BUDGET_MS) {
        setImmediate(run);
        return;
      }
      resolve();
    };
    setImmediate(run);
  });
}
