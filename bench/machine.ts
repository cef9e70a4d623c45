/** How busy the whole machine is, every process on it counted (Linux: /proc/stat). */
import { readFileSync } from "node:fs";
import { cpus } from "node:os";

/** The machine's CPU time so far, in clock ticks over every core: busy, and in all (busy and idle). */
export interface MachineTicks {
  busy: number;
  total: number;
}

/** Reads the machine's CPU time so far; `undefined` where /proc/stat is missing. */
export function machineTicks(): MachineTicks | undefined {
  try {
    const fields = (readFileSync("/proc/stat", "latin1").split("\n")[0] ?? "").trim().split(/\s+/).slice(1).map(Number);
    const total = fields.reduce((a, b) => a + b, 0);
    const idle = (fields[3] ?? 0) + (fields[4] ?? 0);
    return { busy: total - idle, total };
  } catch {
    return undefined;
  }
}

/** Cores kept busy on average between two readings (0 to the number of cores); NaN without both. */
export function busyCores(from: MachineTicks | undefined, to: MachineTicks | undefined): number {
  if (from === undefined || to === undefined) return Number.NaN;
  const total = to.total - from.total;
  return total === 0 ? 0 : ((to.busy - from.busy) / total) * cpus().length;
}

/**
 * Starts measuring how many cores the whole machine keeps busy, returning the function that
 * reads the average since; `undefined` where /proc/stat is missing.
 */
export function machineBusy(): (() => number) | undefined {
  const start = machineTicks();
  if (start === undefined) return undefined;
  return () => busyCores(start, machineTicks() ?? start);
}
