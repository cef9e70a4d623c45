/**
 * A benchmark process's own CPU time and event-loop delay, read between two requests from the
 * benchmark (see `SampleRequest`): what the process used of the machine in a window, and how
 * long its callbacks waited behind other work.
 */
import { type IntervalHistogram, monitorEventLoopDelay } from "node:perf_hooks";
import { type LoopDelay, type ProcessSample, wallClock } from "./protocol";

/**
 * How often the monitor's timer is due, in ms. Each run of it costs the process a wake-up,
 * so no finer than needed to see the stalls that matter to a latency of tens of ms.
 */
export const LOOP_RESOLUTION_MS = 10;

/** Started by the first sample that asks for it; never before, so other phases don't pay its timer. */
let monitor: IntervalHistogram | undefined;

/** The delay since the monitor's last reset, in ms: Node records the whole interval, so the resolution is taken off. */
function loopDelayOf(h: IntervalHistogram): LoopDelay {
  const ms = (ns: number): number => (h.count === 0 ? Number.NaN : Math.max(0, ns / 1e6 - LOOP_RESOLUTION_MS));
  return {
    p50: ms(h.percentile(50)),
    p99: ms(h.percentile(99)),
    max: ms(h.max),
    samples: h.count,
    resolutionMs: LOOP_RESOLUTION_MS,
  };
}

/** Reads this process's CPU time and its loop delay since the previous sample, then resets the delay. */
export function sampleProcess(loopDelay: boolean): ProcessSample {
  const used = process.cpuUsage();
  const at = wallClock();
  let loop: LoopDelay | null = null;
  if (monitor !== undefined) {
    loop = loopDelayOf(monitor);
    monitor.reset();
  } else if (loopDelay) {
    monitor = monitorEventLoopDelay({ resolution: LOOP_RESOLUTION_MS });
    monitor.enable();
  }
  return { at, cpuMs: (used.user + used.system) / 1000, loop };
}
