import { PerformanceObserver, performance } from "node:perf_hooks";

/** An interval between two timer turns that held the loop for a while: kept to subtract garbage collection later. */
interface Long {
  from: number;
  to: number;
  blockMs: number;
}

/**
 * Measures how long this process's event loop was held: a timer due every millisecond notes,
 * for each interval between two of its runs, the wall time and the CPU time the process used
 * in it. A block by the server's own code is CPU spent with no turn for timers; a pause of
 * the whole process (another process holding the machine's cores) is wall time without CPU.
 * `maxBlockMs` counts the smaller of the two, so the bound holds on a busy machine too, while
 * `maxDelayMs` is the plain wall-clock lateness, for the record. `maxBlockWithoutGcMs` also
 * leaves out the garbage collector's pauses inside each interval, which depend on the size of
 * the heap a test built, not on how the code under test takes turns.
 */
export class LoopBlockMeter {
  maxBlockMs = 0;
  maxDelayMs = 0;
  maxBlockWithoutGcMs = 0;
  #timer: NodeJS.Timeout | undefined;
  #wall = 0;
  #cpu = 0;
  readonly #long: Long[] = [];
  readonly #gc: { start: number; duration: number }[] = [];
  readonly #observer = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) this.#gc.push({ start: entry.startTime, duration: entry.duration });
  });

  start(): this {
    this.#observer.observe({ entryTypes: ["gc"] });
    this.#wall = performance.now();
    this.#cpu = cpuMs();
    const tick = (): void => {
      const wall = performance.now();
      const cpu = cpuMs();
      const wallMs = wall - this.#wall;
      const blockMs = Math.min(wallMs, cpu - this.#cpu);
      this.maxDelayMs = Math.max(this.maxDelayMs, wallMs);
      this.maxBlockMs = Math.max(this.maxBlockMs, blockMs);
      if (blockMs > 5) this.#long.push({ from: this.#wall, to: wall, blockMs });
      this.#wall = wall;
      this.#cpu = cpu;
      this.#timer = setTimeout(tick, 1);
    };
    this.#timer = setTimeout(tick, 1);
    return this;
  }

  stop(): this {
    clearTimeout(this.#timer);
    for (const entry of this.#observer.takeRecords?.() ?? []) {
      this.#gc.push({ start: entry.startTime, duration: entry.duration });
    }
    this.#observer.disconnect();
    for (const { from, to, blockMs } of this.#long) {
      const gcMs = this.#gc.filter((g) => g.start >= from && g.start <= to).reduce((sum, g) => sum + g.duration, 0);
      this.maxBlockWithoutGcMs = Math.max(this.maxBlockWithoutGcMs, blockMs - gcMs);
    }
    return this;
  }
}

function cpuMs(): number {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
}
