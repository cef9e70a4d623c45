/**
 * Measures how long this process's event loop was held: a timer due every millisecond notes,
 * for each interval between two of its runs, the wall time and the CPU time the process used
 * in it. A block by the server's own code (garbage collection included) is CPU spent with no
 * turn for timers; a pause of the whole process (another process holding the machine's cores)
 * is wall time without CPU. `maxBlockMs` counts the smaller of the two, so the bound holds on a
 * busy machine too, while `maxDelayMs` is the plain wall-clock lateness, for the record.
 */
export class LoopBlockMeter {
  maxBlockMs = 0;
  maxDelayMs = 0;
  #timer: NodeJS.Timeout | undefined;
  #wall = 0n;
  #cpu = 0;

  start(): this {
    this.#wall = process.hrtime.bigint();
    this.#cpu = cpuMs();
    const tick = (): void => {
      const wall = process.hrtime.bigint();
      const cpu = cpuMs();
      const wallMs = Number(wall - this.#wall) / 1e6;
      this.maxDelayMs = Math.max(this.maxDelayMs, wallMs);
      this.maxBlockMs = Math.max(this.maxBlockMs, Math.min(wallMs, cpu - this.#cpu));
      this.#wall = wall;
      this.#cpu = cpu;
      this.#timer = setTimeout(tick, 1);
    };
    this.#timer = setTimeout(tick, 1);
    return this;
  }

  stop(): this {
    clearTimeout(this.#timer);
    return this;
  }
}

function cpuMs(): number {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
}
