/**
 * Where a deploy trial's time went, in its quiet window and during the move: the CPU time
 * each process used per second (the serving processes, the writer, both load processes,
 * Redis, the benchmark itself, and the machine as a whole), the event-loop delay of the
 * survivor and of its own clients' load process, and the survivor's own-client latency split
 * at the survivor's router. The two cores are shared by all of them, so the survivor's
 * latency can rise because runcast does more or because the machine has no CPU left.
 */
import { cpus } from "node:os";
import type { Redis } from "ioredis";
import { busyCores, type MachineTicks, machineTicks } from "./machine";
import type { LatencyPart, LatencySplit, LoadReplies, LoopDelay, ProcessSample } from "./protocol";
import { wallClock } from "./protocol";
import { redisCpuMs } from "./redis-work";

/**
 * The deploy's processes: the survivor, the closing process (it stays up after its close,
 * idle once its streams ended, to answer the benchmark), the writer, the load process of the
 * survivor's own clients and that of the moved clients.
 */
export const DEPLOY_PROCESSES = ["survivor", "closing", "writer", "ownLoad", "movedLoad"] as const;
/** One of {@link DEPLOY_PROCESSES}. */
export type DeployProcess = (typeof DEPLOY_PROCESSES)[number];

/** What is read at a window's boundary. */
export interface DeploySnapshot {
  processes: Record<DeployProcess, ProcessSample>;
  redis: { at: number; cpuMs: number };
  /** The benchmark's own process (it polls the load processes during the move). */
  bench: { at: number; cpuMs: number };
  machine: MachineTicks | undefined;
}

/** Reads every process's sample (which also restarts its event-loop delay), Redis's and the machine's CPU time. */
export async function snapshot(
  samplers: Record<DeployProcess, () => Promise<ProcessSample>>,
  redis: Redis,
): Promise<DeploySnapshot> {
  const [samples, redisMs] = await Promise.all([
    Promise.all(DEPLOY_PROCESSES.map((name) => samplers[name]())),
    redisCpuMs(redis),
  ]);
  const redisAt = wallClock();
  const used = process.cpuUsage();
  return {
    processes: Object.fromEntries(DEPLOY_PROCESSES.map((name, i) => [name, samples[i]])) as Record<
      DeployProcess,
      ProcessSample
    >,
    redis: { at: redisAt, cpuMs: redisMs },
    bench: { at: wallClock(), cpuMs: (used.user + used.system) / 1000 },
    machine: machineTicks(),
  };
}

/** Where the CPU went in one window, and how late the monitored event loops ran. */
export interface DeployWindow {
  /** From the first snapshot to the second, in ms (the survivor's clock). */
  ms: number;
  /** CPU time per second of the window, by process: how many cores each kept busy. */
  cores: Record<DeployProcess | "redis" | "bench", number>;
  /** Their sum. */
  ours: number;
  /** Cores the machine kept busy, every process on it (/proc/stat); NaN where it cannot tell. */
  machine: number;
  /** What the machine did besides the benchmark's processes: `machine` less `ours`, at least 0. */
  other: number;
  /** The machine's cores. */
  cpus: number;
  /** Event-loop delay over the window, of the processes that monitor theirs (the survivor and its clients' load process). */
  loopDelay: Partial<Record<DeployProcess, LoopDelay>>;
}

/** The window between two snapshots; `to`'s event-loop delays are those since `from` reset them. */
export function windowBetween(from: DeploySnapshot, to: DeploySnapshot): DeployWindow {
  const rate = (a: { at: number; cpuMs: number }, b: { at: number; cpuMs: number }): number =>
    b.at > a.at ? Math.max(0, b.cpuMs - a.cpuMs) / (b.at - a.at) : Number.NaN;
  const cores = {
    ...(Object.fromEntries(
      DEPLOY_PROCESSES.map((name) => [name, rate(from.processes[name], to.processes[name])]),
    ) as Record<DeployProcess, number>),
    redis: rate(from.redis, to.redis),
    bench: rate(from.bench, to.bench),
  };
  const ours = Object.values(cores).reduce((sum, x) => sum + x, 0);
  const machine = busyCores(from.machine, to.machine);
  const loopDelay: Partial<Record<DeployProcess, LoopDelay>> = {};
  for (const name of DEPLOY_PROCESSES) {
    const loop = to.processes[name].loop;
    if (loop !== null) loopDelay[name] = reviveLoop(loop);
  }
  return {
    ms: to.processes.survivor.at - from.processes.survivor.at,
    cores,
    ours,
    machine,
    other: Number.isNaN(machine) ? Number.NaN : Math.max(0, machine - ours),
    cpus: cpus().length,
    loopDelay,
  };
}

/** A figure as sent over IPC, where JSON turned NaN into null: NaN again. */
function num(x: number | null): number {
  return x ?? Number.NaN;
}

function reviveLoop(l: LoopDelay): LoopDelay {
  return { ...l, p50: num(l.p50), p99: num(l.p99), max: num(l.max) };
}

function revivePart(x: LatencyPart): LatencyPart {
  return { p50: num(x.p50), p99: num(x.p99) };
}

/** A latency reply as sent over IPC: NaN for the nulls JSON made of it, the split's included. */
export function latencyOf(r: LoadReplies["watch-latency"]): LoadReplies["watch-latency"] {
  const figures = { p50: num(r.p50), p99: num(r.p99), samples: r.samples };
  if (r.split === undefined) return figures;
  const s: LatencySplit = r.split;
  return {
    ...figures,
    split: {
      ...s,
      toRouter: revivePart(s.toRouter),
      inServer: revivePart(s.inServer),
      toClient: revivePart(s.toClient),
      tail: {
        deliveries: s.tail.deliveries,
        total: num(s.tail.total),
        toRouter: num(s.tail.toRouter),
        inServer: num(s.tail.inServer),
        toClient: num(s.tail.toClient),
      },
    },
  };
}

/** What {@link deployCostTables} reads of a trial. */
export interface CostedTrial {
  clients: number;
  drainMs: number;
  retry: string;
  quiet: LoadReplies["watch-latency"];
  storm: LoadReplies["watch-latency"];
  windows: { quiet: DeployWindow; move: DeployWindow };
}

const fixed = (x: number, digits: number): string => (Number.isFinite(x) ? x.toFixed(digits) : "-");
const ms = (x: number): string => fixed(x, 1);
const part = (x: LatencyPart | undefined): string => (x === undefined ? "-" : `${ms(x.p50)} / ${ms(x.p99)}`);
const loop = (x: LoopDelay | undefined): string =>
  x === undefined ? "-" : `${ms(x.p50)} / ${ms(x.p99)} / ${ms(x.max)}`;

/**
 * Two tables, one row per trial and window. The first splits the survivor's own-client
 * latency where it was spent, with the event-loop delays of the survivor and of its clients'
 * load process beside it; the second shows the CPU each process used per second of the
 * window, and the machine's busy cores, against its cores.
 */
export function deployCostTables(trials: readonly CostedTrial[]): { latency: string; cpu: string } {
  const latency = [
    "| clients | drainMs | retry | window | own p50 / p99 | to the router p50 / p99 | in the survivor p50 / p99 | to the client p50 / p99 | slowest 1%: mean total = to the router + in the survivor + to the client | survivor loop delay p50 / p99 / max | own load loop delay p50 / p99 / max |",
    "|---:|---:|---|---|---:|---:|---:|---:|---:|---:|---:|",
  ];
  const cpu = [
    "| clients | drainMs | retry | window | length | survivor | closing | writer | own load | moved load | Redis | bench | all these | machine busy | other work |",
    "|---:|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
  ];
  for (const t of trials) {
    for (const [name, figures, w] of [
      ["quiet", t.quiet, t.windows.quiet],
      ["move", t.storm, t.windows.move],
    ] as const) {
      const head = `| ${t.clients} | ${t.drainMs} | ${t.retry} | ${name} |`;
      const s = figures.split;
      const tail =
        s === undefined
          ? "-"
          : `${ms(s.tail.total)} = ${ms(s.tail.toRouter)} + ${ms(s.tail.inServer)} + ${ms(s.tail.toClient)} ms`;
      latency.push(
        `${head} ${ms(figures.p50)} / ${ms(figures.p99)} ms | ${part(s?.toRouter)} ms | ${part(s?.inServer)} ms | ` +
          `${part(s?.toClient)} ms | ${tail} | ${loop(w.loopDelay.survivor)} ms | ${loop(w.loopDelay.ownLoad)} ms |`,
      );
      const c = w.cores;
      cpu.push(
        `${head} ${fixed(w.ms / 1000, 2)} s | ${fixed(c.survivor, 2)} | ${fixed(c.closing, 2)} | ${fixed(c.writer, 2)} | ` +
          `${fixed(c.ownLoad, 2)} | ${fixed(c.movedLoad, 2)} | ${fixed(c.redis, 2)} | ${fixed(c.bench, 2)} | ` +
          `${fixed(w.ours, 2)} | ${fixed(w.machine, 2)} of ${w.cpus} | ${fixed(w.other, 2)} |`,
      );
    }
  }
  return { latency: latency.join("\n"), cpu: cpu.join("\n") };
}
