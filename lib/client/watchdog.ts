/**
 * The dead-connection watchdog: a connection that stays silent for too long is taken for dead.
 *
 * @packageDocumentation
 */

/**
 * How many heartbeat intervals of silence make a connection dead. The server's heartbeats
 * share one timer, and a busy client may have one skipped, so one or two missed beats are not
 * proof; three are.
 */
export const SILENT_INTERVALS = 3;

/**
 * Calls `onSilence` once nothing has been {@link Watchdog.feed | fed} to it for
 * {@link SILENT_INTERVALS} heartbeat intervals. Frames only record a time: the one timer runs
 * once per silence limit at most, however many frames arrive.
 */
export class Watchdog {
  readonly #onSilence: (silentMs: number) => void;
  #intervalMs: number | undefined;
  #last = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;
  /** Between `start()` and `stop()`: a connection is being watched (armed once an interval is known). */
  #watching = false;

  /** @param onSilence - Called with how long the connection was silent, in ms; the watchdog is then stopped. */
  constructor(onSilence: (silentMs: number) => void) {
    this.#onSilence = onSilence;
  }

  /** The heartbeat interval in ms; `undefined` (unknown) keeps the watchdog idle. */
  get intervalMs(): number | undefined {
    return this.#intervalMs;
  }

  /** Sets the interval; a running watchdog re-arms with it. */
  set intervalMs(ms: number | undefined) {
    if (ms === this.#intervalMs) return;
    this.#intervalMs = ms;
    if (this.#watching) this.#arm();
  }

  /** Starts watching a new connection: the silence counts from now. */
  start(): void {
    this.#last = Date.now();
    this.#watching = true;
    this.#arm();
  }

  /** Something arrived: the connection is alive. */
  feed(): void {
    this.#last = Date.now();
  }

  stop(): void {
    this.#watching = false;
    this.#clear();
  }

  #clear(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /** Schedules the check for the moment the silence would reach the limit; the check re-arms if something came. */
  #arm(): void {
    this.#clear();
    const intervalMs = this.#intervalMs;
    if (intervalMs === undefined) return;
    const limit = intervalMs * SILENT_INTERVALS;
    this.#timer = setTimeout(
      () => {
        this.#timer = undefined;
        const silent = Date.now() - this.#last;
        if (silent >= limit) {
          this.#watching = false;
          this.#onSilence(silent);
        } else this.#arm();
      },
      Math.max(0, limit - (Date.now() - this.#last)),
    );
  }
}
