/** Summaries and tables of benchmark results. */
import { SERVER_KINDS, type ServerKind } from "./protocol";

/** One blast: broadcasts as fast as the clients take them, for a fixed time. */
export interface Blast {
  broadcasts: number;
  /** Events delivered per second, summed over clients. */
  eventsPerSec: number;
  /** Every client got every broadcast. */
  complete: boolean;
  /** Cores the server, the load process, and everything else on the machine kept busy meanwhile. */
  serverCpu: number;
  loadCpu: number;
  otherCpu: number;
  /**
   * CPU time (user + system, ms) of the server process(es) from just before the blast until
   * every client had every event: both processes for `runcast-redis` (Redis not included).
   */
  serverCpuMs: number;
  /**
   * Server CPU per delivered event, in µs: `serverCpuMs` over the events the load process
   * counted. Unlike events/s it does not hit the load process's ceiling.
   */
  cpuPerEventUs: number;
}

/** Delivery at saturation in one load shape: the best of its blasts, and all of them. */
export interface Saturation extends Blast {
  /**
   * Broadcasts issued per event-loop tick; `runcast-scoped-even` issues this many into each of
   * its 100 runs per tick (bench/scoped.ts), so its `broadcasts` are 100 times as many.
   */
  k: number;
  blasts: Blast[];
}

/** Everything measured of one server at one client count in one rep. */
export interface Trial {
  server: ServerKind;
  /** Server processes the clients were spread over (two for `runcast-redis`). */
  processes?: number;
  clients: number;
  rep: number;
  connectFailures: number;
  /** Time for all clients to connect and receive the stream's head. */
  acceptMs: number;
  rssPerConnection: number;
  heapPerConnection: number;
  latency: { p50: number; p99: number; samples: number; complete: boolean };
  saturation: Saturation[];
  cutOffs: number;
  /** Every client stayed connected and received every event of every phase. */
  allDelivered: boolean;
  /**
   * The scoped phase: every connection received exactly its view's share of each wave's
   * events, none more (so none of a run outside its view), by count.
   */
  exactShares?: boolean;
}

/** The figures compared, with how to read them off a trial. */
export const FIGURES = {
  k1: (t: Trial) => t.saturation.find((s) => s.k === 1)?.eventsPerSec ?? Number.NaN,
  k10: (t: Trial) => t.saturation.find((s) => s.k === 10)?.eventsPerSec ?? Number.NaN,
  cpu1: (t: Trial) => t.saturation.find((s) => s.k === 1)?.cpuPerEventUs ?? Number.NaN,
  cpu10: (t: Trial) => t.saturation.find((s) => s.k === 10)?.cpuPerEventUs ?? Number.NaN,
  p50: (t: Trial) => t.latency.p50,
  p99: (t: Trial) => t.latency.p99,
  rss: (t: Trial) => t.rssPerConnection,
  heap: (t: Trial) => t.heapPerConnection,
  accept: (t: Trial) => t.acceptMs,
} as const;
/** A figure's name. */
export type Figure = keyof typeof FIGURES;

/** A figure's median over reps, and the median of its ratios to another server in the same rep. */
export interface Compared {
  value: number;
  vsHandwritten: number;
  vsBetterSse: number;
  /** Ratio to `express-loop`: what Express alone costs, runcast's floor as Express middleware. */
  vsExpressLoop: number;
}

/** One server at one client count, over all reps. */
export interface Row {
  server: ServerKind;
  clients: number;
  reps: number;
  allDelivered: boolean;
  cutOffs: number;
  figures: Record<Figure, Compared>;
}

export function median(values: readonly number[]): number {
  const sorted = values.filter((v) => !Number.isNaN(v)).sort((a, b) => a - b);
  if (sorted.length === 0) return Number.NaN;
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

/** Medians per server and client count, with ratios computed rep by rep. */
export function summarize(trials: readonly Trial[]): Row[] {
  const rows: Row[] = [];
  const counts = [...new Set(trials.map((t) => t.clients))].sort((a, b) => a - b);
  for (const clients of counts) {
    for (const server of SERVER_KINDS) {
      const mine = trials.filter((t) => t.server === server && t.clients === clients);
      if (mine.length === 0) continue;
      const figures = {} as Record<Figure, Compared>;
      for (const [name, read] of Object.entries(FIGURES) as [Figure, (t: Trial) => number][]) {
        const ratio = (other: ServerKind): number =>
          median(
            mine.map((t) => {
              const base = trials.find((b) => b.server === other && b.clients === clients && b.rep === t.rep);
              return base === undefined ? Number.NaN : read(t) / read(base);
            }),
          );
        figures[name] = {
          value: median(mine.map(read)),
          vsHandwritten: ratio("handwritten"),
          vsBetterSse: ratio("better-sse"),
          vsExpressLoop: ratio("express-loop"),
        };
      }
      rows.push({
        server,
        clients,
        reps: mine.length,
        allDelivered: mine.every((t) => t.allDelivered),
        cutOffs: mine.reduce((sum, t) => sum + t.cutOffs, 0),
        figures,
      });
    }
  }
  return rows;
}

function rate(value: number): string {
  if (Number.isNaN(value)) return "-";
  if (value >= 1e6) return `${(value / 1e6).toFixed(2)}M`;
  if (value >= 1e3) return `${(value / 1e3).toFixed(0)}k`;
  return value.toFixed(0);
}

function ratio(value: number): string {
  return Number.isNaN(value) ? "" : ` (${value.toFixed(2)}x)`;
}

/** Server CPU per delivered event. */
function us(value: number): string {
  return Number.isNaN(value) ? "-" : `${value.toFixed(2)} µs`;
}

function kb(bytes: number): string {
  return Number.isNaN(bytes) ? "-" : `${(bytes / 1024).toFixed(1)} KB`;
}

/** The results as a Markdown table; ratios are to the hand-written server of the same rep. */
export function table(rows: readonly Row[]): string {
  const lines = [
    "| clients | server | K=1 events/s | K=10 events/s | K=1 CPU/event | K=10 CPU/event | p50 ms | p99 ms | RSS/conn | heap/conn | accept all | every event |",
    "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|:---:|",
  ];
  for (const row of rows) {
    const f = row.figures;
    const base = row.server === "handwritten";
    const r = (c: Compared): string => (base ? "" : ratio(c.vsHandwritten));
    lines.push(
      `| ${row.clients} | ${row.server} | ${rate(f.k1.value)}${r(f.k1)} | ${rate(f.k10.value)}${r(f.k10)} | ` +
        `${us(f.cpu1.value)}${r(f.cpu1)} | ${us(f.cpu10.value)}${r(f.cpu10)} | ` +
        `${f.p50.value.toFixed(1)}${r(f.p50)} | ${f.p99.value.toFixed(1)}${r(f.p99)} | ` +
        `${kb(f.rss.value)}${r(f.rss)} | ${kb(f.heap.value)}${r(f.heap)} | ` +
        `${(f.accept.value / 1000).toFixed(2)} s${r(f.accept)} | ${row.allDelivered ? "yes" : "NO"}${row.cutOffs > 0 ? ` (${row.cutOffs} cut off)` : ""} |`,
    );
  }
  return lines.join("\n");
}

/** runcast against the others, per client count: the figures the targets are stated in. */
export function headline(rows: readonly Row[]): string {
  const lines = [
    "| clients | K=1 vs hand-written | K=10 vs hand-written | K=1 CPU/event vs hand-written | K=10 CPU/event vs hand-written | best shape vs better-sse | p99 vs hand-written | RSS/conn vs hand-written | heap/conn vs hand-written | heap/conn vs Express alone |",
    "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
  ];
  for (const row of rows) {
    if (row.server !== "runcast") continue;
    const f = row.figures;
    const best = Math.max(f.k1.vsBetterSse, f.k10.vsBetterSse);
    const x = (v: number): string => (Number.isNaN(v) ? "-" : `${v.toFixed(2)}x`);
    lines.push(
      `| ${row.clients} | ${x(f.k1.vsHandwritten)} | ${x(f.k10.vsHandwritten)} | ${x(f.cpu1.vsHandwritten)} | ${x(f.cpu10.vsHandwritten)} | ${x(best)} | ${x(f.p99.vsHandwritten)} | ${x(f.rss.vsHandwritten)} | ${x(f.heap.vsHandwritten)} | ${x(f.heap.vsExpressLoop)} |`,
    );
  }
  return lines.join("\n");
}

/**
 * runcast over Redis (two processes) against the hand-written server (one process), per
 * client count: absolute figures with their ratios.
 */
export function redisHeadline(rows: readonly Row[]): string {
  const lines = [
    "| clients | K=1 events/s | K=10 events/s | K=1 CPU/event | K=10 CPU/event | p50 ms | p99 ms | RSS/conn | heap/conn | accept all |",
    "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
  ];
  for (const row of rows) {
    if (row.server !== "runcast-redis") continue;
    const f = row.figures;
    lines.push(
      `| ${row.clients} | ${rate(f.k1.value)}${ratio(f.k1.vsHandwritten)} | ${rate(f.k10.value)}${ratio(f.k10.vsHandwritten)} | ` +
        `${us(f.cpu1.value)}${ratio(f.cpu1.vsHandwritten)} | ${us(f.cpu10.value)}${ratio(f.cpu10.vsHandwritten)} | ` +
        `${f.p50.value.toFixed(1)}${ratio(f.p50.vsHandwritten)} | ${f.p99.value.toFixed(1)}${ratio(f.p99.vsHandwritten)} | ` +
        `${kb(f.rss.value)}${ratio(f.rss.vsHandwritten)} | ${kb(f.heap.value)}${ratio(f.heap.vsHandwritten)} | ` +
        `${(f.accept.value / 1000).toFixed(2)} s${ratio(f.accept.vsHandwritten)} |`,
    );
  }
  return lines.join("\n");
}
