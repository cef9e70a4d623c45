/**
 * The scoped phase: runcast's global stream over 100 runs, each carrying one of 100 tags, with
 * every client holding a stream token. `runcast-global` clients' tokens are unscoped, so each
 * sees every run; the two scoped kinds' tokens are scoped to one tag each (client i to
 * `tag_<i mod 100>`), so each client sees one run. All three run the same server
 * (bench/servers/runcast-tags.ts) through the fan-out trial, K=10, in the same rep, and differ
 * in what a tick carries:
 *
 * - `runcast-global` and `runcast-scoped`: K broadcasts per tick, each into the next run in
 *   turn. An unscoped client gets K events a tick; a scoped one K/100 on average.
 * - `runcast-scoped-even`: K broadcasts into every run per tick (K x 100), so each scoped
 *   client gets K events a tick, as an unscoped client does: the comparison at equal events
 *   per client.
 *
 * Each scoped kind is reported as ratios to the unscoped trial of the same rep.
 */
import { randomBytes } from "node:crypto";
import { createStreamToken } from "../lib/index";
import type { ServerKind } from "./protocol";
import type { Trial } from "./report";
import { TAGGED_RUNS } from "./servers/runcast-tags";

/** The kinds the phase compares, in the order they run in odd reps (reversed in even ones). */
export const SCOPED_KINDS = ["runcast-global", "runcast-scoped", "runcast-scoped-even"] as const;
/** One of the phase's kinds. */
export type ScopedKind = (typeof SCOPED_KINDS)[number];
/** The kinds whose clients hold scoped tokens, each compared with `runcast-global`. */
export const SCOPED_VIEWS = ["runcast-scoped", "runcast-scoped-even"] as const;

/** Whether a server kind is one of the scoped phase's. */
export function isScopedKind(kind: ServerKind): kind is ScopedKind {
  return (SCOPED_KINDS as readonly string[]).includes(kind);
}

/** A fresh HS256 secret for one bench run (the server gets it as an argument). */
export function tokenSecret(): string {
  return randomBytes(32).toString("base64url");
}

/** The paths the clients of a kind ask for, cycled over the connections: one per tag, or one unscoped. */
export async function scopedPaths(kind: ScopedKind, secret: string): Promise<string[]> {
  const path = (token: string): string => `/api/stream?token=${token}`;
  if (kind === "runcast-global") return [path(await createStreamToken(secret, { expiresIn: "2h" }))];
  return Promise.all(
    Array.from({ length: TAGGED_RUNS }, async (_, j) =>
      path(await createStreamToken(secret, { tags: [`tag_${j}`], expiresIn: "2h" })),
    ),
  );
}

/** The share of the broadcasts each client of a kind receives: its run's, a hundredth, when scoped. */
export function eventShare(kind: ServerKind): number {
  return kind === "runcast-scoped" || kind === "runcast-scoped-even" ? 1 / TAGGED_RUNS : 1;
}

/**
 * Broadcasts per step of a kind's waves: each of a blast's K per tick, and each step of a
 * paced wave, is one event into every run for `runcast-scoped-even` (so its clients get as
 * many events as unscoped ones), a single broadcast otherwise.
 */
export function broadcastsPerStep(kind: ServerKind): number {
  return kind === "runcast-scoped-even" ? TAGGED_RUNS : 1;
}

/**
 * The paced latency wave of a kind, asked for `steps` steps (`perStep` broadcasts each). The
 * phase's server rounds every wave up to whole rounds of its runs, so the unscoped wave has
 * 100 steps for the 30 asked (each unscoped client gets 100 events); `runcast-scoped-even`
 * takes as many steps, each a round, so each of its clients gets as many events at the same
 * rate. `runcast-scoped` keeps the unscoped wave's broadcasts (one event per client).
 */
export function pacedWave(kind: ServerKind, steps: number): { count: number; perStep: number } {
  const perStep = broadcastsPerStep(kind);
  if (!isScopedKind(kind)) return { count: steps, perStep };
  return { count: Math.ceil(steps / TAGGED_RUNS) * TAGGED_RUNS * perStep, perStep };
}

function median(xs: readonly number[]): number {
  const sorted = [...xs].sort((a, b) => a - b);
  if (sorted.length === 0) return Number.NaN;
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

/**
 * One scoped kind against the unscoped stream at one client count: medians over reps of each
 * figure and of the per-rep ratios.
 */
export interface ScopedRow {
  clients: number;
  /** The scoped kind compared with the unscoped one. */
  kind: (typeof SCOPED_VIEWS)[number];
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

/** The phase's rows from its trials (K=10 only): per client count, one per scoped kind that ran. */
export function scopedRows(trials: readonly Trial[]): ScopedRow[] {
  const rows: ScopedRow[] = [];
  const k10 = (t: Trial): { eventsPerSec: number; cpuPerEventUs: number } =>
    t.saturation.find((x) => x.k === 10) ?? { eventsPerSec: Number.NaN, cpuPerEventUs: Number.NaN };
  for (const clients of [...new Set(trials.map((t) => t.clients))]) {
    for (const kind of SCOPED_VIEWS) {
      const pairs: { g: Trial; s: Trial }[] = [];
      for (const rep of [...new Set(trials.map((t) => t.rep))]) {
        const g = trials.find((t) => t.clients === clients && t.rep === rep && t.server === "runcast-global");
        const s = trials.find((t) => t.clients === clients && t.rep === rep && t.server === kind);
        if (g !== undefined && s !== undefined) pairs.push({ g, s });
      }
      if (pairs.length === 0) continue;
      rows.push({
        clients,
        kind,
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
  }
  return rows;
}

/** What each client of a scoped kind gets per blast tick, for the table (an unscoped client gets 10). */
const PER_TICK: Record<(typeof SCOPED_VIEWS)[number], string> = {
  "runcast-scoped": "0.1 event: the 10 go to 10 of the 100 runs (`runcast-scoped`)",
  "runcast-scoped-even": "10 events, as unscoped: 10 into every run (`runcast-scoped-even`)",
};

/** The phase's table. */
export function scopedTable(rows: readonly ScopedRow[]): string {
  const rate = (x: number): string => (x >= 1e6 ? `${(x / 1e6).toFixed(2)}M` : `${Math.round(x / 1000)}k`);
  const kb = (x: number): string => `${(x / 1024).toFixed(1)} KB`;
  const lines = [
    "| clients | each scoped client gets per tick (unscoped: 10 events) | unscoped K=10 events/s | scoped events/s | ratio (target ≥ 0.8x) | unscoped heap/conn | scoped heap/conn | ratio (target ≤ 1.1x) | CPU/event unscoped | scoped | ratio | every event |",
    "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|:---:|",
  ];
  for (const r of rows) {
    lines.push(
      `| ${r.clients} | ${PER_TICK[r.kind]} | ${rate(r.globalEventsPerSec)} | ${rate(r.scopedEventsPerSec)} | ${r.eventsRatio.toFixed(2)}x | ` +
        `${kb(r.globalHeapPerConnection)} | ${kb(r.scopedHeapPerConnection)} | ${r.heapRatio.toFixed(2)}x | ` +
        `${r.globalCpuPerEventUs.toFixed(2)} µs | ${r.scopedCpuPerEventUs.toFixed(2)} µs | ${r.cpuRatio.toFixed(2)}x | ${r.allDelivered ? "yes" : "NO"} |`,
    );
  }
  return lines.join("\n");
}
