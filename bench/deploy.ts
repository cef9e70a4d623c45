/**
 * The deploy phase: two `RedisRunSource` processes share a Redis while 10 runs stay busy;
 * N clients watch those runs on the first, which then closes its router with
 * `close({ drainMs })`, as a deploy would. Every client reconnects, after the `retry:` delay
 * the server gave it, to the second process with `Last-Event-ID`. Measured at the survivor:
 * the peak rate of reconnects arriving, the delivery latency to its own clients during the
 * move against a quiet window before it, the time until every moved client is live again;
 * and, over every client, that no event was lost or duplicated. In the same windows, where the
 * survivor's latency went (bench/deploy-costs.ts): each process's CPU, the survivor's event-loop
 * delay, and the latency split at the survivor's router.
 *
 * The baseline trial, "all at once", is runcast before its operations features: `drainMs` 0,
 * and every client waits one fixed delay (`retryMs`) whatever `retry:` it was sent, as browsers
 * did when the server sent one fixed `retry:`. The targets compare the drained trials with it.
 */
import { randomUUID } from "node:crypto";
import { loadavg } from "node:os";
import type { Redis } from "ioredis";
import { Child } from "./children";
import {
  type CostedTrial,
  type DeployProcess,
  type DeploySnapshot,
  type DeployWindow,
  latencyOf,
  snapshot,
  windowBetween,
} from "./deploy-costs";
import { startPrivateRedis } from "./private-redis";
import type {
  FailoverReply,
  LoadReplies,
  LoadRequest,
  ProcessSample,
  ServerReplies,
  ServerRequest,
  WatcherTally,
} from "./protocol";
import { wallClock } from "./protocol";
import { connectRedis, deleteKeys } from "./redis-admin";

/**
 * How a trial's clients come back: after the `retry:` the server sent each (runcast jitters
 * it per connection), or all after one fixed delay (the baseline, runcast before that).
 */
export type DeployRetry = "fixed" | "jittered";

/** One close to measure: its `drainMs`, and how the moved clients wait before reconnecting. */
export interface DeployDrain {
  drainMs: number;
  retry: DeployRetry;
}

/**
 * The closes of `BENCH_DEPLOY_DRAIN`: comma-separated `drainMs` values, each optionally
 * followed by `:fixed` for clients that ignore the server's `retry:` and wait one fixed delay
 * (`0:fixed` is the all-at-once baseline).
 */
export function parseDeployDrains(value: string): DeployDrain[] {
  return value
    .split(",")
    .map((entry) => entry.trim())
    .filter((entry) => entry !== "")
    .map((entry) => {
      const match = /^(\d+)(:fixed)?$/.exec(entry);
      if (match === null) {
        throw new Error(
          `BENCH_DEPLOY_DRAIN: "${entry}" is not a drainMs (such as 5000) or drainMs:fixed (such as 0:fixed)`,
        );
      }
      return { drainMs: Number(match[1]), retry: match[2] === undefined ? "jittered" : "fixed" };
    });
}

/** How a close is named in the log and in failures. */
function drainLabel(clients: number, d: DeployDrain): string {
  return `deploy N=${clients} drainMs ${d.drainMs} retry ${d.retry}`;
}

/** Settings of the deploy phase (environment `BENCH_DEPLOY_*`, see bench/run.ts). */
export interface DeploySettings {
  /** Clients on the closing process, one trial each. */
  clients: number[];
  /** The closes, one trial each: the baseline `0:fixed`, then the targets' 0 and 5000. */
  drains: DeployDrain[];
  /** The serving processes' `retryMs` (runcast's default, which they keep): the fixed delay of a `fixed` trial. */
  retryMs: number;
  /** Clients of the surviving process from the start: whose latency is measured. */
  own: number;
  runs: number;
  /** Events per run and second, recorded throughout. */
  rate: number;
  /** How long the quiet latency is measured before the close. */
  quietMs: number;
  /** Fresh connections waiting for their head at once. */
  concurrency: number;
  timeoutMs: number;
  redisUrl: string | undefined;
  serverFlags: string[];
  loadFlags: string[];
}

/** One deploy: one client count, one `drainMs`, one way of waiting before reconnecting. */
export interface DeployTrial extends CostedTrial {
  clients: number;
  drainMs: number;
  /** `fixed`: every moved client waited exactly `retryMs`, ignoring the `retry:` it was sent; `jittered`: it waited that `retry:`. */
  retry: DeployRetry;
  /** The servers' `retryMs`: the fixed delay, or the middle of the jittered ones. */
  retryMs: number;
  own: number;
  runs: number;
  rate: number;
  /** From the `close` call until it resolved, in ms. */
  closeMs: number;
  /** Requests arriving at the survivor from the close on. */
  arrivals: number;
  /** The most requests the survivor received within any one second, from the close on. */
  peakPerSec: number;
  /** From the first of those requests to the last, in ms: how widely the reconnects were spread. */
  arrivalSpanMs: number;
  /**
   * Delivery latency to the survivor's own clients, in ms: before the close, and from the close
   * until all were live; each with its split at the survivor's router (see `LatencySplit`).
   */
  quiet: LoadReplies["watch-latency"];
  storm: LoadReplies["watch-latency"];
  /** Storm p99 over quiet p99 (target: at most 2). */
  p99Ratio: number;
  /** From the close call until every moved client had a head from the survivor; until each had a live event there. */
  allReconnectedMs: number;
  allLiveMs: number;
  failover: FailoverReply;
  /** Every event each moved client received, and each of the survivor's own, checked once the writes stopped. */
  moved: WatcherTally;
  ownTally: WatcherTally;
  /** Events lost and received twice, over every client. */
  lost: number;
  duplicated: number;
  exact: boolean;
  redisServer: "private" | "given";
  loadAverage: number;
  /**
   * The quiet window and the move (from just before the close call until the poll that found
   * every moved client live, up to 100 ms past the move's latency window): CPU per process,
   * event-loop delays (see bench/deploy-costs.ts).
   */
  windows: { quiet: DeployWindow; move: DeployWindow };
}

type Server = Child<ServerRequest, ServerReplies>;
type Load = Child<LoadRequest, LoadReplies>;

/** A figure as sent over IPC, where JSON turned NaN into null: NaN again. */
function num(x: number | null): number {
  return x ?? Number.NaN;
}

/** How much earlier than the quiet window an event delivered in it may have been sent, for the stamps asked for. */
const STAMPS_BEFORE_MS = 10_000;

function failoverOf(r: FailoverReply): FailoverReply {
  return {
    ...r,
    allReconnectedAt: num(r.allReconnectedAt),
    allLiveAt: num(r.allLiveAt),
    firstEndedAt: num(r.firstEndedAt),
  };
}

/** The most of `times` (sorted or not) falling within any window of `windowMs`. */
export function peakInWindow(times: readonly number[], windowMs: number): number {
  const sorted = [...times].sort((a, b) => a - b);
  let peak = 0;
  let start = 0;
  for (let end = 0; end < sorted.length; end++) {
    while ((sorted[end] as number) - (sorted[start] as number) >= windowMs) start++;
    peak = Math.max(peak, end - start + 1);
  }
  return peak;
}

function exactTally(t: WatcherTally): boolean {
  return (
    t.complete &&
    t.duplicates === 0 &&
    t.missing === 0 &&
    t.idsOutOfOrder === 0 &&
    t.wrongRun === 0 &&
    t.resyncs === 0 &&
    t.resumeSnapshots === 0 &&
    t.closed === 0
  );
}

async function startAll(
  s: DeploySettings,
  url: string,
  prefix: string,
): Promise<{ moving: Load; staying: Load; writer: Server; closing: Server; survivor: Server; ports: number[] }> {
  const options = JSON.stringify({ url, run: false });
  // The survivor stamps each event as its router gets it and as it is written to each own client, for the latency split.
  const survivorOptions = JSON.stringify({ url, run: false, stamps: true });
  const serverFlags = ["--expose-gc", ...s.serverFlags];
  const starting = await Promise.allSettled([
    Child.start<LoadRequest, LoadReplies>("load", [], s.loadFlags),
    Child.start<LoadRequest, LoadReplies>("load", [], s.loadFlags),
    Child.start<ServerRequest, ServerReplies>("server", ["runcast-redis", prefix, "writer", options], serverFlags),
    Child.start<ServerRequest, ServerReplies>("server", ["runcast-redis", prefix, "reader", options], serverFlags),
    Child.start<ServerRequest, ServerReplies>(
      "server",
      ["runcast-redis", prefix, "reader", survivorOptions],
      serverFlags,
    ),
  ]);
  const failed = starting.find((x): x is PromiseRejectedResult => x.status === "rejected");
  if (failed !== undefined) {
    await Promise.all(starting.map((x) => (x.status === "fulfilled" ? x.value.child.stop() : undefined)));
    throw failed.reason;
  }
  const [moving, staying, writer, closing, survivor] = starting.map(
    (x) => (x as PromiseFulfilledResult<{ child: Load | Server; port: number }>).value,
  ) as [
    { child: Load },
    { child: Load },
    { child: Server },
    { child: Server; port: number },
    { child: Server; port: number },
  ];
  return {
    moving: moving.child,
    staying: staying.child,
    writer: writer.child,
    closing: closing.child,
    survivor: survivor.child,
    ports: [closing.port, survivor.port],
  };
}

async function deployTrial(
  s: DeploySettings,
  redis: { url: string; admin: Redis; kind: "private" | "given"; prefix: string },
  clients: number,
  drain: DeployDrain,
  log: (message: string) => void,
): Promise<DeployTrial> {
  const { drainMs, retry } = drain;
  const prefix = `${redis.prefix}:${clients}:${drainMs}:${retry}`;
  const p = await startAll(s, redis.url, prefix);
  const [closingPort, survivorPort] = p.ports as [number, number];
  const runIds = Array.from({ length: s.runs }, (_, i) => `run_deploy_${i}`);
  const paths = runIds.map((id) => `/api/runs/${id}/stream`);
  const wait = s.timeoutMs + 30_000;
  try {
    await p.writer.request({ cmd: "runs-create", runs: runIds });
    await p.writer.request({ cmd: "runs-flow", perSecond: s.rate });
    const own = await p.staying.request(
      {
        cmd: "watch",
        mode: "fresh",
        ports: [survivorPort],
        paths,
        count: s.own,
        concurrency: s.concurrency,
        latency: true,
        timeoutMs: s.timeoutMs,
      },
      wait,
    );
    if (!own.complete) throw new Error(`deploy: not every client of the survivor connected within ${s.timeoutMs} ms`);
    const moved = await p.moving.request(
      {
        cmd: "watch",
        mode: "fresh",
        ports: [closingPort],
        paths,
        count: clients,
        concurrency: s.concurrency,
        failoverPort: survivorPort,
        ...(retry === "fixed" ? { failoverFixedRetryMs: s.retryMs } : {}),
        timeoutMs: s.timeoutMs,
      },
      wait,
    );
    if (!moved.complete) throw new Error(`deploy: not every client connected within ${s.timeoutMs} ms`);
    for (const load of [p.staying, p.moving]) {
      const first = await load.request({ cmd: "watch-wait", events: 1, timeoutMs: s.timeoutMs }, wait);
      if (!first.complete) throw new Error("deploy: not every client received an event after connecting");
    }
    log(`${drainLabel(clients, drain)}: ${clients} clients on the closing process, ${s.own} on the survivor`);

    // Each window is bounded by two snapshots of every process; the first starts the event-loop
    // monitors of the survivor and its clients' load process, each later one restarts them.
    const samplers: Record<DeployProcess, () => Promise<ProcessSample>> = {
      survivor: () => p.survivor.request({ cmd: "sample", loopDelay: true }),
      closing: () => p.closing.request({ cmd: "sample", loopDelay: false }),
      writer: () => p.writer.request({ cmd: "sample", loopDelay: false }),
      ownLoad: () => p.staying.request({ cmd: "sample", loopDelay: true }),
      movedLoad: () => p.moving.request({ cmd: "sample", loopDelay: false }),
    };
    const snap = (): Promise<DeploySnapshot> => snapshot(samplers, redis.admin);
    await snap();

    // Quiet: the survivor's own clients, before anything moves.
    const quietStart = await snap();
    const quietFrom = wallClock();
    await new Promise((resolve) => setTimeout(resolve, s.quietMs));
    const quietTo = wallClock();
    const quietEnd = await snap();

    // The deploy: the first process closes; its clients come back on the survivor by themselves.
    const loadAverage = loadavg()[0] ?? Number.NaN;
    const moveStart = await snap();
    const closeAt = wallClock();
    const closed = await p.closing.request({ cmd: "close", drainMs }, drainMs + s.timeoutMs);
    const deadline = Date.now() + s.timeoutMs;
    let failover = failoverOf(await p.moving.request({ cmd: "watch-failover" }));
    while (failover.live < clients && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      failover = failoverOf(await p.moving.request({ cmd: "watch-failover" }));
    }
    const moveEnd = await snap();
    const stormTo = Number.isNaN(failover.allLiveAt) ? wallClock() : failover.allLiveAt;
    const { times } = await p.survivor.request({ cmd: "arrivals", since: closeAt });
    const stamps = await p.survivor.request({ cmd: "stamps", since: quietFrom - STAMPS_BEFORE_MS });
    const quiet = latencyOf(await p.staying.request({ cmd: "watch-latency", from: quietFrom, to: quietTo, stamps }));
    const storm = latencyOf(await p.staying.request({ cmd: "watch-latency", from: closeAt, to: stormTo, stamps }));

    // Every event of every run once: the writes stop, then every client is checked.
    const finals = await p.writer.request({ cmd: "runs-flow", perSecond: 0 });
    const [movedTally, ownTally] = await Promise.all(
      [p.moving, p.staying].map((load) =>
        load.request({ cmd: "watch-wait", seqs: finals.seqs, timeoutMs: s.timeoutMs }, wait),
      ),
    );
    const m = movedTally as WatcherTally;
    const o = ownTally as WatcherTally;
    const trial: DeployTrial = {
      clients,
      drainMs,
      retry,
      retryMs: s.retryMs,
      own: s.own,
      runs: s.runs,
      rate: s.rate,
      closeMs: closed.closedAt - closeAt,
      arrivals: times.length,
      peakPerSec: peakInWindow(times, 1000),
      arrivalSpanMs: times.length === 0 ? Number.NaN : Math.max(...times) - Math.min(...times),
      quiet,
      storm,
      p99Ratio: storm.p99 / quiet.p99,
      allReconnectedMs: failover.allReconnectedAt - closeAt,
      allLiveMs: failover.allLiveAt - closeAt,
      failover,
      moved: m,
      ownTally: o,
      lost: m.missing + o.missing,
      duplicated: m.duplicates + o.duplicates,
      exact: failover.live === clients && exactTally(m) && exactTally(o),
      redisServer: redis.kind,
      loadAverage,
      windows: { quiet: windowBetween(quietStart, quietEnd), move: windowBetween(moveStart, moveEnd) },
    };
    log(describeDeploy(trial));
    return trial;
  } finally {
    await Promise.all([p.moving.stop(), p.staying.stop(), p.writer.stop(), p.closing.stop(), p.survivor.stop()]);
    await deleteKeys(redis.admin, prefix);
  }
}

/** One line about a deploy, for the log. */
export function describeDeploy(t: DeployTrial): string {
  return (
    `${drainLabel(t.clients, t)}: peak ${t.peakPerSec} reconnects/s at the survivor (${t.arrivals} in all, ` +
    `over ${(t.arrivalSpanMs / 1000).toFixed(2)} s), ` +
    `p99 ${t.storm.p99.toFixed(1)} ms during the move against ${t.quiet.p99.toFixed(1)} ms quiet (${t.p99Ratio.toFixed(2)}x), ` +
    `all live in ${(t.allLiveMs / 1000).toFixed(2)} s, ${t.lost} lost, ${t.duplicated} duplicated, ` +
    `survivor loop delay p99 ${t.windows.quiet.loopDelay.survivor?.p99.toFixed(1) ?? "-"} ms quiet, ` +
    `${t.windows.move.loopDelay.survivor?.p99.toFixed(1) ?? "-"} ms during the move, machine busy ` +
    `${t.windows.quiet.machine.toFixed(2)} then ${t.windows.move.machine.toFixed(2)} of ${t.windows.move.cpus} cores, ` +
    `${t.exact ? "every event exactly once" : `NOT EXACT ${JSON.stringify({ failover: t.failover, moved: t.moved, own: t.ownTally })}`}, ` +
    `load average ${t.loadAverage.toFixed(1)}`
  );
}

/** A deploy that could not be measured, and why. */
export interface DeployFailure {
  clients: number;
  drainMs: number;
  retry: DeployRetry;
  error: string;
}

/** How a failed deploy is named in the report. */
export function describeDeployFailure(x: DeployFailure): string {
  return `${drainLabel(x.clients, x)}: ${x.error}`;
}

/** Runs every deploy of the settings on a private Redis (or the one given); answers the trials, or why not. */
export async function runDeployPhase(
  s: DeploySettings,
  log: (message: string) => void,
): Promise<{ trials: DeployTrial[]; failures: DeployFailure[] } | { skipped: string }> {
  let redis: { url: string; admin: Redis; kind: "private" | "given"; stop: () => Promise<void> };
  if (s.redisUrl === undefined) {
    try {
      redis = { ...(await startPrivateRedis()), kind: "private" };
    } catch (error) {
      return {
        skipped: `${error instanceof Error ? error.message : String(error)} (or set BENCH_DEPLOY_REDIS to a Redis URL)`,
      };
    }
  } else {
    const admin = await connectRedis(s.redisUrl);
    if (typeof admin === "string") return { skipped: admin };
    redis = { url: s.redisUrl, admin, kind: "given", stop: async () => void (await admin.quit()) };
  }
  const prefix = `runcast-bench-deploy:${randomUUID().slice(0, 8)}`;
  const trials: DeployTrial[] = [];
  const failures: DeployFailure[] = [];
  try {
    for (const clients of s.clients) {
      for (const drain of s.drains) {
        try {
          trials.push(await deployTrial(s, { ...redis, prefix }, clients, drain, log));
        } catch (error) {
          const message = error instanceof Error ? error.message : String(error);
          failures.push({ clients, ...drain, error: message });
          log(`${drainLabel(clients, drain)} FAILED: ${message}`);
        }
      }
    }
  } finally {
    await deleteKeys(redis.admin, prefix).catch(() => 0);
    await redis.stop();
  }
  return { trials, failures };
}

/**
 * The phase's table: one row per deploy. The peak rate is set against the same client
 * count's all-at-once baseline (`drainMs` 0, fixed retry: the storm the peak target
 * compares with) and against its `drainMs` 0 with jittered `retry:`, runcast's close without
 * a drain today.
 */
export function deployTable(trials: readonly DeployTrial[]): string {
  const ms = (x: number): string => (Number.isFinite(x) ? x.toFixed(1) : "-");
  const sec = (x: number): string => (Number.isFinite(x) ? `${(x / 1000).toFixed(2)} s` : "never");
  const against = (t: DeployTrial, retry: DeployRetry): string => {
    // The baseline row stands alone: nothing to set it against but itself.
    if (t.drainMs === 0 && t.retry === "fixed") return "";
    const base = trials.find((x) => x.clients === t.clients && x.drainMs === 0 && x.retry === retry);
    return base === undefined || base === t ? "" : `${(t.peakPerSec / base.peakPerSec).toFixed(2)}x`;
  };
  const lines = [
    "| clients | drainMs | retry | peak reconnects/s at the survivor | vs all at once (target ≤ 0.2x) | vs drainMs 0 jittered | survivor p99 quiet | p99 during the move | ratio (target ≤ 2x) | all reconnected | all live | lost | duplicated | every event once |",
    "|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|:---:|",
  ];
  for (const t of trials) {
    lines.push(
      `| ${t.clients} | ${t.drainMs} | ${t.retry} | ${t.peakPerSec} | ${against(t, "fixed")} | ${against(t, "jittered")} | ` +
        `${ms(t.quiet.p99)} ms | ${ms(t.storm.p99)} ms | ` +
        `${Number.isFinite(t.p99Ratio) ? `${t.p99Ratio.toFixed(2)}x` : "-"} | ${sec(t.allReconnectedMs)} | ${sec(t.allLiveMs)} | ` +
        `${t.lost} | ${t.duplicated} | ${t.exact ? "yes" : "NO"} |`,
    );
  }
  return lines.join("\n");
}
