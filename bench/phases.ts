/**
 * The benchmark's phases (`BENCH_PHASES`): the fan-out table, the reconnect storm, the
 * deploy (bench/deploy.ts), and the slots of phases that wait for a runcast feature. A pending phase that is asked for is
 * reported as not run, with what it needs: no figure is ever made up for a feature that
 * does not exist.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";

/** Whether this runcast's `close` takes `{ drainMs }` (the deploy phase needs it). */
export function drainPresent(): boolean {
  return existsSync(join(__dirname, "..", "lib", "drain.ts"));
}

/** Every phase the benchmark knows. */
export const PHASES = ["fanout", "storm", "scoped", "deploy"] as const;
/** One phase. */
export type PhaseName = (typeof PHASES)[number];
/** Phases run when `BENCH_PHASES` is not set. */
export const DEFAULT_PHASES: readonly PhaseName[] = ["fanout", "storm"];

/** A phase that is planned but not built. */
export interface PendingPhase {
  /** The runcast feature it measures. */
  needs: string;
  /** Whether this version of runcast has that feature (then only the phase itself is missing). */
  featurePresent(): boolean;
  /** What it will measure, and how it fits in: the brief for whoever adds it. */
  plan: string;
}

function libExports(name: string): boolean {
  try {
    return name in (require("../lib/index") as Record<string, unknown>);
  } catch {
    return false;
  }
}

/** The planned phases. */
export const PENDING_PHASES: Record<Exclude<PhaseName, "fanout" | "storm" | "deploy">, PendingPhase> = {
  scoped: {
    needs: "scopes (run tags, `?tags=` on the global stream, scoped `authorize`)",
    featurePresent: () => libExports("createStreamToken"),
    plan:
      "A fan-out row (server kind `runcast-scoped`, bench/servers/): 100 runs spread over 100 tags, each client on " +
      "the global stream with `?tags=<one tag>` (the load's `connect` takes `paths`, one per connection, cycled), " +
      "K=10, at 1,000 and 5,000 clients. Reported next to runcast's unscoped global stream of the same rep: " +
      "delivered events/s (target at least 0.8x), heap per connection (at most 1.1x), server CPU per event.",
  },
};

/** Why a pending phase was not run. */
export function pendingReason(name: keyof typeof PENDING_PHASES): string {
  const phase = PENDING_PHASES[name];
  return phase.featurePresent()
    ? `runcast now has ${phase.needs}, but this phase is not written yet. Plan: ${phase.plan}`
    : `needs ${phase.needs}, which this version of runcast does not have. Plan: ${phase.plan}`;
}
