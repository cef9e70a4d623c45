/**
 * The scoped phase: runcast's global stream over 100 runs, each carrying one of 100 tags, with
 * every client holding a stream token. `runcast-scoped` clients' tokens are scoped to one tag
 * each (client i to `tag_<i mod 100>`), so each sees one run; `runcast-global` clients' tokens
 * are unscoped, so each sees every run. Both run the same server (bench/servers/runcast-tags.ts)
 * through the fan-out trial, K=10, in the same rep; the scoped row is reported as ratios to
 * the unscoped one.
 */
import { randomBytes } from "node:crypto";
import { createStreamToken } from "../lib/index";
import type { ServerKind } from "./protocol";
import type { Trial } from "./report";
import { TAGGED_RUNS } from "./servers/runcast-tags";

/** The two views the phase compares. */
export const SCOPED_KINDS = ["runcast-global", "runcast-scoped"] as const;

/** Whether a server kind is one of the scoped phase's. */
export function isScopedKind(kind: ServerKind): kind is (typeof SCOPED_KINDS)[number] {
  return (SCOPED_KINDS as readonly string[]).includes(kind);
}

/** A fresh HS256 secret for one bench run (the server gets it as an argument). */
export function tokenSecret(): string {
  return randomBytes(32).toString("base64url");
}

/** The paths the clients of a kind ask for, cycled over the connections: one per tag, or one unscoped. */
export async function scopedPaths(kind: (typeof SCOPED_KINDS)[number], secret: string): Promise<string[]> {
  const path = (token: string): string => `/api/stream?token=${token}`;
  if (kind === "runcast-global") return [path(await createStreamToken(secret, { expiresIn: "2h" }))];
  return Promise.all(
    Array.from({ length: TAGGED_RUNS }, async (_, j) =>
      path(await createStreamToken(secret, { tags: [`tag_${j}`], expiresIn: "2h" })),
    ),
  );
}

/** The share of the events each client of a kind receives. */
export function eventShare(kind: ServerKind): number {
  return kind === "runcast-scoped" ? 1 / TAGGED_RUNS : 1;
}

function median(xs: readonly number[]): number {
  const sorted = [...xs].sort((a, b) => a - b);
  if (sorted.length === 0) return Number.NaN;
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

/** One client count's comparison: medians over reps of each figure and of the per-rep ratios. */
export interface ScopedRow {
  clients: number;
  reps: number;
  globalEventsPerSec: number;
  scopedEventsPerSec: number;
  /** Scoped over unscoped delivered events/s, K=10 (target at least 0.8). */
  eventsRatio: number;
  globalHeapPerConnection: number;
  scopedHeapPerConnection: number;
  /** Scoped over unscoped heap per connection (target at most 1.1). */
  heapRatio: number;
  globalCpuPerEventUs: number;
  scopedCpuPerEventUs: number;
  cpuRatio: number;
  /** Every client of both views got every event of its view, and the views' totals were exact (no extra). */
  allDelivered: boolean;
}

/** The phase's rows from its trials (K=10 only). */
export function scopedRows(trials: readonly Trial[]): ScopedRow[] {
  const rows: ScopedRow[] = [];
  for (const clients of [...new Set(trials.map((t) => t.clients))]) {
    const pairs: { g: Trial; s: Trial }[] = [];
    for (const rep of [...new Set(trials.map((t) => t.rep))]) {
      const g = trials.find((t) => t.clients === clients && t.rep === rep && t.server === "runcast-global");
      const s = trials.find((t) => t.clients === clients && t.rep === rep && t.server === "runcast-scoped");
      if (g !== undefined && s !== undefined) pairs.push({ g, s });
    }
    const k10 = (t: Trial): { eventsPerSec: number; cpuPerEventUs: number } =>
      t.saturation.find((x) => x.k === 10) ?? { eventsPerSec: Number.NaN, cpuPerEventUs: Number.NaN };
    rows.push({
      clients,
      reps: pairs.length,
      globalEventsPerSec: median(pairs.map((p) => k10(p.g).eventsPerSec)),
      scopedEventsPerSec: median(pairs.map((p) => k10(p.s).eventsPerSec)),
      eventsRatio: median(pairs.map((p) => k10(p.s).eventsPerSec / k10(p.g).eventsPerSec)),
      globalHeapPerConnection: median(pairs.map((p) => p.g.heapPerConnection)),
      scopedHeapPerConnection: median(pairs.map((p) => p.s.heapPerConnection)),
      heapRatio: median(pairs.map((p) => p.s.heapPerConnection / p.g.heapPerConnection)),
      globalCpuPerEventUs: median(pairs.map((p) => k10(p.g).cpuPerEventUs)),
      scopedCpuPerEventUs: median(pairs.map((p) => k10(p.s).cpuPerEventUs)),
      cpuRatio: median(pairs.map((p) => k10(p.s).cpuPerEventUs / k10(p.g).cpuPerEventUs)),
      allDelivered: pairs.every(
        (p) => p.g.allDelivered && p.s.allDelivered && p.g.exactShares === true && p.s.exactShares === true,
      ),
    });
  }
  return rows;
}

/** The phase's table. */
export function scopedTable(rows: readonly ScopedRow[]): string {
  const rate = (x: number): string => (x >= 1e6 ? `${(x / 1e6).toFixed(2)}M` : `${Math.round(x / 1000)}k`);
  const kb = (x: number): string => `${(x / 1024).toFixed(1)} KB`;
  const lines = [
    "| clients | unscoped K=10 events/s | scoped K=10 events/s | ratio (target ≥ 0.8x) | unscoped heap/conn | scoped heap/conn | ratio (target ≤ 1.1x) | CPU/event unscoped | scoped | ratio | every event |",
    "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|:---:|",
  ];
  for (const r of rows) {
    lines.push(
      `| ${r.clients} | ${rate(r.globalEventsPerSec)} | ${rate(r.scopedEventsPerSec)} | ${r.eventsRatio.toFixed(2)}x | ` +
        `${kb(r.globalHeapPerConnection)} | ${kb(r.scopedHeapPerConnection)} | ${r.heapRatio.toFixed(2)}x | ` +
        `${r.globalCpuPerEventUs.toFixed(2)} µs | ${r.scopedCpuPerEventUs.toFixed(2)} µs | ${r.cpuRatio.toFixed(2)}x | ${r.allDelivered ? "yes" : "NO"} |`,
    );
  }
  return lines.join("\n");
}
