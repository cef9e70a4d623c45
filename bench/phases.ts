/**
 * The benchmark's phases (`BENCH_PHASES`): the fan-out table, the reconnect storm, the scoped
 * row (bench/scoped.ts), the deploy (bench/deploy.ts), and a slot for phases that wait for a
 * runcast feature. A pending phase that is asked for is
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

/**
 * The planned phases: none today (each phase above now runs). A phase added here before its
 * feature exists is reported as not run, with its plan.
 */
export const PENDING_PHASES: Partial<Record<PhaseName, PendingPhase>> = {};

/** Why a pending phase was not run. */
export function pendingReason(name: PhaseName): string {
  const phase = PENDING_PHASES[name];
  if (phase === undefined) return `${name} is not a pending phase`;
  return phase.featurePresent()
    ? `runcast now has ${phase.needs}, but this phase is not written yet. Plan: ${phase.plan}`
    : `needs ${phase.needs}, which this version of runcast does not have. Plan: ${phase.plan}`;
}
