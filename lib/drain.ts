import { performance } from "node:perf_hooks";
import { drainSchedule, shuffle } from "./jitter";

/**
 * Ends a set of streams spread over a window rather than all at once, so that their clients'
 * reconnects reach the remaining processes at a steady rate instead of as one storm. The
 * items are shuffled and each ends at a random moment of its own slot of the window (see
 * `drainSchedule`); one timer serves the whole drain. `done` resolves once every ending has.
 */
export class Drain<T> {
  /** Resolves when every item's ending has resolved. */
  readonly done: Promise<void>;
  readonly #items: T[];
  readonly #times: number[];
  readonly #end: (item: T) => Promise<void>;
  readonly #endings: Promise<void>[] = [];
  readonly #started = performance.now();
  #next = 0;
  #timer: NodeJS.Timeout | undefined;
  #finish: (() => void) | undefined;

  /**
   * @param items - What to end; shuffled in place.
   * @param windowMs - The window, in ms, from now.
   * @param end - Ends one item; resolves once it is over. Must not throw.
   */
  constructor(items: T[], windowMs: number, end: (item: T) => Promise<void>) {
    this.#items = shuffle(items);
    this.#times = drainSchedule(items.length, windowMs);
    this.#end = end;
    this.done = new Promise<void>((resolve) => {
      this.#finish = resolve;
    });
    this.#tick();
  }

  /** Ends every item not ended yet, now. */
  hurry(): void {
    this.#endUpTo(Number.POSITIVE_INFINITY);
  }

  #tick(): void {
    this.#timer = undefined;
    const elapsed = performance.now() - this.#started;
    this.#endUpTo(elapsed);
    const due = this.#times[this.#next];
    if (due !== undefined) this.#timer = setTimeout(() => this.#tick(), Math.max(1, due - elapsed));
  }

  #endUpTo(elapsed: number): void {
    while (this.#next < this.#items.length && (this.#times[this.#next] ?? 0) <= elapsed) {
      this.#endings.push(this.#end(this.#items[this.#next] as T));
      this.#next++;
    }
    if (this.#next < this.#items.length) return;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    const finish = this.#finish;
    this.#finish = undefined;
    if (finish !== undefined) void Promise.all(this.#endings).then(finish);
  }
}
