/**
 * The benchmark: runcast, a hand-written `node:http` server and plain better-sse, each in its
 * own process, driven by one load process, on 127.0.0.1; then runcast on Redis in a reconnect storm. Run it with
 * `npm run bench`; see BENCHMARKS.md for what it measures and the settings below.
 *
 * Environment:
 * - `BENCH_SMOKE=1`: a few clients, short phases, one rep (a check that it works).
 * - `BENCH_CLIENTS=100,1000`: client counts (default 100,1000,5000,10000).
 * - `BENCH_REPS=3`: reps per server and count (default 2); servers alternate within a rep.
 * - `BENCH_SERVERS=runcast,handwritten`: servers to run (the hand-written one is the baseline of every ratio);
 *   `express-loop`, the hand-written loop as an Express route, shows what Express itself costs;
 *   `runcast-redis` (default) is two runcast processes sharing the Redis at `REDIS_URL`
 *   (default redis://127.0.0.1:6379), skipped with a loud message when none answers.
 * - `BENCH_OUT=file.json`: where to write the JSON (default bench/results/<time>.json and latest.json).
 * - `BENCH_SERVER_FLAGS="--cpu-prof --cpu-prof-dir=bench/results/profiles"`: extra Node flags for the server processes;
 *   `BENCH_LOAD_FLAGS` the same for the load process.
 * - `BENCH_PHASES=fanout,storm` (default): the fan-out tables and the reconnect storm (bench/storm.ts);
 *   `deploy` (bench/deploy.ts) closes one of two Redis processes under its clients with `close({ drainMs })`;
 *   `scoped` (bench/scoped.ts) compares the global stream with tokens scoped to one of 100 tags against unscoped,
 *   twice: with K=10 broadcasts a tick spread over the 100 runs (`runcast-scoped`, each scoped client gets 0.1
 *   event a tick), and with 10 into every run a tick (`runcast-scoped-even`, 10 events a tick per scoped client,
 *   as per unscoped client); its paced latency wave likewise puts one event into every run per step, as many
 *   steps as the unscoped wave, so its clients get the unscoped clients' events at their rate.
 * - Scoped: `BENCH_SCOPED_CLIENTS=1000,5000`, `BENCH_SCOPED_REPS=1`, `BENCH_COALESCE_MS=0` (the router's
 *   `coalesceMs`, the same for all three kinds); the three kinds run unscoped, scoped,
 *   scoped-even in odd reps and reversed in even ones.
 * - Deploy: `BENCH_DEPLOY_CLIENTS=5000`; `BENCH_DEPLOY_DRAIN=0:fixed,0,5000` (smoke: `0:fixed,0,1000`), one
 *   trial per entry: `drainMs` of the close, the moved clients waiting the jittered `retry:` the server sent
 *   each; with `:fixed` they ignore it and all wait one fixed `retryMs` (3000 ms), as browsers did before
 *   runcast jittered `retry:`, so `0:fixed` is the all-at-once baseline each peak is set against;
 *   `BENCH_DEPLOY_OWN=500` (the survivor's own clients, whose latency is measured), `BENCH_DEPLOY_RATE=2`
 *   (events per run and second, 10 runs), `BENCH_DEPLOY_REDIS=url` (instead of a private redis-server).
 * - Storm: `BENCH_STORM_CLIENTS=1000,5000`, `BENCH_STORM_HISTORY=1000,2000` (envelopes per run before it),
 *   `BENCH_STORM_MISSED=100,200` (events per run recorded while the clients are away), `BENCH_STORM_RUNS=10`,
 *   `BENCH_STORM_RATE=2` (events per run and second), `BENCH_STORM_REPS=1`, `BENCH_STORM_REDIS=url` (instead
 *   of a private redis-server), `BENCH_STORM_CACHE=on,off` (the serving router's `resumeCacheBytes` at its
 *   default, then 0: one storm each).
 */

import { randomUUID } from "node:crypto";
import { mkdirSync, writeFileSync } from "node:fs";
import { cpus, loadavg, totalmem } from "node:os";
import { dirname, join } from "node:path";
import type { Redis } from "ioredis";
import { Child, compileChildren } from "./children";
import {
  type DeployFailure,
  type DeploySettings,
  type DeployTrial,
  deployTable,
  describeDeployFailure,
  parseDeployDrains,
  runDeployPhase,
} from "./deploy";
import { deployCostTables } from "./deploy-costs";
import { machineBusy } from "./machine";
import { DEFAULT_PHASES, drainPresent, PENDING_PHASES, PHASES, type PhaseName, pendingReason } from "./phases";
import { LOOP_RESOLUTION_MS } from "./process-sample";
import {
  DEFAULT_SERVERS,
  type LoadReplies,
  type LoadRequest,
  SERVER_KINDS,
  type ServerKind,
  type ServerReplies,
  type ServerRequest,
  STREAM_PATH,
} from "./protocol";
import { connectRedis, deleteKeys } from "./redis-admin";
import { type Blast, headline, redisHeadline, type Saturation, summarize, type Trial, table } from "./report";
import {
  broadcastsPerStep,
  eventShare,
  isScopedKind,
  pacedWave,
  SCOPED_KINDS,
  scopedPaths,
  scopedRows,
  scopedTable,
  tokenSecret,
} from "./scoped";
import { runStormPhase, type StormFailure, type StormSettings, type StormTrial } from "./storm";
import { stormCommands, stormDoubling, stormTable } from "./storm-report";

/** Settings of one benchmark run. */
interface Settings {
  clients: number[];
  reps: number;
  servers: ServerKind[];
  /** Length of a measured blast, how many of them (the best counts), and the unmeasured one before them. */
  blastMs: number;
  blasts: number;
  warmupMs: number;
  /** Unsent bytes a sampled client may hold before the blast waits for it. */
  governorBytes: number;
  /** Events sent at a steady rate for the latency figures, and their interval. */
  latencyEvents: number;
  latencyIntervalMs: number;
  /** Connections opening at once. */
  concurrency: number;
  /** Load shapes: broadcasts per tick. */
  shapes: number[];
  /** Extra Node flags of the server processes and of the load process. */
  serverFlags: string[];
  loadFlags: string[];
  phases: PhaseName[];
  storm: StormSettings;
  deploy: DeploySettings;
  /** The scoped phase's client counts and reps (bench/scoped.ts). */
  scoped: { clients: number[]; reps: number; coalesceMs: number };
}

const SMOKE = process.env.BENCH_SMOKE === "1";

function list(value: string | undefined): string[] | undefined {
  return value === undefined || value.trim() === "" ? undefined : value.split(",").map((s) => s.trim());
}

function flags(value: string | undefined): string[] {
  return (value ?? "").split(/\s+/).filter((flag) => flag !== "");
}

function settings(): Settings {
  const servers = (list(process.env.BENCH_SERVERS) ?? [...DEFAULT_SERVERS]) as ServerKind[];
  for (const s of servers) if (!SERVER_KINDS.includes(s)) throw new Error(`unknown server ${s}`);
  const clients = list(process.env.BENCH_CLIENTS)?.map(Number) ?? (SMOKE ? [4] : [100, 1000, 5000, 10000]);
  const phases = (list(process.env.BENCH_PHASES) ?? [...DEFAULT_PHASES]) as PhaseName[];
  for (const p of phases) if (!PHASES.includes(p)) throw new Error(`unknown phase ${p} (phases: ${PHASES.join(", ")})`);
  return {
    clients,
    reps: Number(process.env.BENCH_REPS ?? (SMOKE ? 1 : 2)),
    servers: servers.includes("handwritten") ? servers : ["handwritten", ...servers],
    blastMs: SMOKE ? 200 : 1000,
    blasts: SMOKE ? 1 : 3,
    warmupMs: SMOKE ? 100 : 500,
    governorBytes: 64 * 1024,
    latencyEvents: SMOKE ? 5 : 30,
    latencyIntervalMs: SMOKE ? 20 : 100,
    concurrency: 256,
    shapes: [1, 10],
    serverFlags: flags(process.env.BENCH_SERVER_FLAGS),
    loadFlags: flags(process.env.BENCH_LOAD_FLAGS),
    phases,
    storm: {
      clients: list(process.env.BENCH_STORM_CLIENTS)?.map(Number) ?? (SMOKE ? [20] : [1000, 5000]),
      histories: list(process.env.BENCH_STORM_HISTORY)?.map(Number) ?? (SMOKE ? [100, 200] : [1000, 2000]),
      missed: list(process.env.BENCH_STORM_MISSED)?.map(Number) ?? (SMOKE ? [10] : [100, 200]),
      runs: Number(process.env.BENCH_STORM_RUNS ?? 10),
      rate: Number(process.env.BENCH_STORM_RATE ?? 2),
      caches: (list(process.env.BENCH_STORM_CACHE) ?? ["on", "off"]).map((x) => x !== "off"),
      concurrency: 256,
      reps: Number(process.env.BENCH_STORM_REPS ?? 1),
      timeoutMs: SMOKE ? 30_000 : 180_000,
      redisUrl: process.env.BENCH_STORM_REDIS || undefined,
      serverFlags: flags(process.env.BENCH_SERVER_FLAGS),
      loadFlags: flags(process.env.BENCH_LOAD_FLAGS),
    },
    scoped: {
      clients: list(process.env.BENCH_SCOPED_CLIENTS)?.map(Number) ?? (SMOKE ? [200] : [1000, 5000]),
      reps: Number(process.env.BENCH_SCOPED_REPS ?? 1),
      // Read by the scoped servers themselves (bench/servers/runcast-tags.ts); recorded here.
      coalesceMs: Number(process.env.BENCH_COALESCE_MS ?? 0),
    },
    deploy: {
      clients: list(process.env.BENCH_DEPLOY_CLIENTS)?.map(Number) ?? (SMOKE ? [20] : [5000]),
      drains: parseDeployDrains(
        process.env.BENCH_DEPLOY_DRAIN?.trim() || (SMOKE ? "0:fixed,0,1000" : "0:fixed,0,5000"),
      ),
      retryMs: 3000,
      own: Number(process.env.BENCH_DEPLOY_OWN ?? (SMOKE ? 5 : 500)),
      runs: 10,
      rate: Number(process.env.BENCH_DEPLOY_RATE ?? (SMOKE ? 10 : 2)),
      quietMs: SMOKE ? 1000 : 5000,
      concurrency: 256,
      timeoutMs: SMOKE ? 30_000 : 180_000,
      redisUrl: process.env.BENCH_DEPLOY_REDIS || undefined,
      serverFlags: flags(process.env.BENCH_SERVER_FLAGS),
      loadFlags: flags(process.env.BENCH_LOAD_FLAGS),
    },
  };
}

type Server = Child<ServerRequest, ServerReplies>;

type Load = Child<LoadRequest, LoadReplies>;

function log(message: string): void {
  process.stderr.write(`${message}\n`);
}

/** Resets the counts, runs `send`, and waits until every client got `events(sent)` events. */
async function deliver<T>(
  load: Load,
  latency: boolean,
  send: () => Promise<T>,
  events: (sent: T) => number,
): Promise<{ sent: T; got: LoadReplies["await"] }> {
  await load.request({ cmd: "reset", latency });
  const sent = await send();
  const got = await load.request({ cmd: "await", events: events(sent), timeoutMs: 60_000 });
  return { sent, got };
}

/** CPU time (user + system, ms) the server processes have used so far, summed. */
async function serversCpuMs(servers: readonly Server[]): Promise<number> {
  const each = await Promise.all(servers.map((x) => x.request({ cmd: "cpu" })));
  return each.reduce((sum, x) => sum + x.ms, 0);
}

/** Clients a trial connects, serves one event and drops before it measures anything. */
const WARM_UP_CLIENTS = 32;

/**
 * Serves a few clients one event and drops them, then waits until every server process has
 * let them go: the code a first connection compiles and the caches it fills are then in the
 * memory baseline, not counted per connection (at 100 clients they were a large share).
 */
async function warmUp(
  load: Load,
  writer: Server,
  servers: readonly Server[],
  ports: readonly number[],
  path: string,
  s: Settings,
  view: { paths: string[] | undefined; share: number; perStep: number },
): Promise<void> {
  const count = Math.max(WARM_UP_CLIENTS, ports.length);
  const connected = await load.request({
    cmd: "connect",
    port: ports[0] ?? 0,
    ports,
    path,
    ...(view.paths === undefined ? {} : { paths: view.paths }),
    count,
    concurrency: s.concurrency,
  });
  if (connected.failed > 0) throw new Error(`warm-up: ${connected.failed} of ${count} clients failed to connect`);
  const first = await deliver(
    load,
    false,
    () => writer.request({ cmd: "paced", count: view.perStep, intervalMs: 0, perStep: view.perStep }),
    (r) => r.broadcasts * view.share,
  );
  if (!first.got.complete) throw new Error("warm-up: not every client got the event");
  await load.request({ cmd: "disconnect" });
  const deadline = Date.now() + 10_000;
  for (;;) {
    const each = await Promise.all(servers.map((x) => x.request({ cmd: "stats" })));
    if (each.every((x) => x.clients === 0)) return;
    if (Date.now() > deadline) throw new Error("warm-up: the server still counts clients 10 s after they left");
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** How a trial reaches Redis, when it runs the `runcast-redis` server. */
interface RedisTarget {
  admin: Redis;
  /** This bench run's fresh prefix; each trial uses a prefix under it. */
  prefix: string;
}

async function trial(
  kind: ServerKind,
  clients: number,
  rep: number,
  s: Settings,
  redis: RedisTarget | undefined,
): Promise<Trial> {
  // `runcast-redis` is two processes on one prefix: the first also writes the events, and
  // every request below goes to it, except memory and stats (asked of both).
  const prefix = kind === "runcast-redis" ? `${redis?.prefix}:${clients}:${rep}` : undefined;
  // The scoped phase's servers take the token secret; their clients a token each.
  const secret = isScopedKind(kind) ? tokenSecret() : undefined;
  const view = {
    paths: isScopedKind(kind) && secret !== undefined ? await scopedPaths(kind, secret) : undefined,
    share: eventShare(kind),
    // `runcast-scoped-even`: each step one event into every run, so each client gets one per step.
    perStep: broadcastsPerStep(kind),
  };
  const serverArgs =
    prefix === undefined
      ? [secret === undefined ? [kind] : [kind, secret]]
      : [
          [kind, prefix, "writer"],
          [kind, prefix, "reader"],
        ];
  const serverFlags = ["--expose-gc", ...s.serverFlags];
  const starting = await Promise.allSettled([
    Child.start<LoadRequest, LoadReplies>("load", [], s.loadFlags),
    ...serverArgs.map((args) => Child.start<ServerRequest, ServerReplies>("server", args, serverFlags)),
  ]);
  const failed = starting.find((x): x is PromiseRejectedResult => x.status === "rejected");
  if (failed !== undefined) {
    // Stop the children that did start, or they outlive the benchmark.
    await Promise.all(starting.map((x) => (x.status === "fulfilled" ? x.value.child.stop() : undefined)));
    throw failed.reason;
  }
  const started = starting.map((x) => (x as PromiseFulfilledResult<{ child: Load | Server; port: number }>).value);
  const [{ child: load }, ...serving] = started as [{ child: Load }, ...{ child: Server; port: number }[]];
  const servers = serving.map((x) => x.child);
  const server = servers[0] as Server;
  const memory = async (): Promise<ServerReplies["memory"]> => {
    const each = await Promise.all(servers.map((x) => x.request({ cmd: "memory" })));
    return { rss: each.reduce((a, m) => a + m.rss, 0), heapUsed: each.reduce((a, m) => a + m.heapUsed, 0) };
  };
  try {
    await warmUp(
      load,
      server,
      servers,
      serving.map((x) => x.port),
      STREAM_PATH[kind],
      s,
      view,
    );
    const before = await memory();
    const connected = await load.request({
      cmd: "connect",
      port: serving[0]?.port ?? 0,
      ports: serving.map((x) => x.port),
      path: STREAM_PATH[kind],
      ...(view.paths === undefined ? {} : { paths: view.paths }),
      count: clients,
      concurrency: s.concurrency,
    });
    // One event to everyone: every client is live before anything is measured.
    const first = await deliver(
      load,
      false,
      () => server.request({ cmd: "paced", count: view.perStep, intervalMs: 0, perStep: view.perStep }),
      (r) => r.broadcasts * view.share,
    );
    // Summed over the processes: per connection held, whichever process holds it.
    const after = await memory();
    let allDelivered = connected.failed === 0 && first.got.complete;
    // Scoped clients: each got its share exactly, none an event of a run outside its view (an extra).
    let exactShares = true;
    const exactShare = (d: { sent: { broadcasts: number }; got: LoadReplies["await"] }): void => {
      exactShares &&= d.got.total === d.sent.broadcasts * view.share * clients;
    };
    exactShare(first);

    const paced = await deliver(
      load,
      true,
      () => server.request({ cmd: "paced", ...pacedWave(kind, s.latencyEvents), intervalMs: s.latencyIntervalMs }),
      (r) => r.broadcasts * view.share,
    );
    allDelivered &&= paced.got.complete;
    exactShare(paced);

    const saturation: Saturation[] = [];
    for (const k of s.shapes) {
      const blast = (durationMs: number) => () =>
        server.request({ cmd: "blast", k: k * view.perStep, durationMs, governorBytes: s.governorBytes });
      const warm = await deliver(load, false, blast(s.warmupMs), (r) => r.broadcasts * view.share);
      allDelivered &&= warm.got.complete;
      exactShare(warm);
      // Several blasts, keeping the best: other work on a shared machine only ever slows one down.
      const blasts: Blast[] = [];
      for (let i = 0; i < s.blasts; i++) {
        const machine = machineBusy();
        const cpuBefore = await serversCpuMs(servers);
        const run = await deliver(load, false, blast(s.blastMs), (r) => r.broadcasts * view.share);
        // Read once every client has every event: the window covers the drain too.
        const cpuAfter = await serversCpuMs(servers);
        const ms = run.got.lastEventAt - run.sent.startedAt;
        const serverCpu = run.sent.cpuMs / ms;
        const loadCpu = run.got.cpuMs / ms;
        blasts.push({
          broadcasts: run.sent.broadcasts,
          eventsPerSec: run.got.total / (ms / 1000),
          complete: run.got.complete,
          serverCpu,
          loadCpu,
          otherCpu: machine === undefined ? Number.NaN : Math.max(0, machine() - serverCpu - loadCpu),
          serverCpuMs: cpuAfter - cpuBefore,
          cpuPerEventUs: run.got.total === 0 ? Number.NaN : ((cpuAfter - cpuBefore) * 1000) / run.got.total,
        });
        allDelivered &&= run.got.complete;
        exactShare(run);
      }
      const best = blasts.reduce((a, b) => (b.eventsPerSec > a.eventsPerSec ? b : a));
      saturation.push({ k, ...best, blasts });
    }
    const each = await Promise.all(servers.map((x) => x.request({ cmd: "stats" })));
    const stats = { cutOffs: each.reduce((a, x) => a + x.cutOffs, 0) };
    return {
      server: kind,
      processes: servers.length,
      clients,
      rep,
      connectFailures: connected.failed,
      acceptMs: connected.acceptMs,
      rssPerConnection: (after.rss - before.rss) / clients,
      heapPerConnection: (after.heapUsed - before.heapUsed) / clients,
      latency: {
        p50: paced.got.latency?.p50 ?? Number.NaN,
        p99: paced.got.latency?.p99 ?? Number.NaN,
        samples: paced.got.latency?.samples ?? 0,
        complete: paced.got.complete,
      },
      saturation,
      cutOffs: stats.cutOffs,
      allDelivered,
      ...(isScopedKind(kind) ? { exactShares } : {}),
    };
  } finally {
    await Promise.all([...servers.map((x) => x.stop()), load.stop()]);
    if (prefix !== undefined && redis !== undefined) await deleteKeys(redis.admin, prefix);
  }
}

function describe(t: Trial): string {
  const sat = t.saturation
    .map(
      (x) =>
        `K=${x.k} ${(x.eventsPerSec / 1000).toFixed(0)}k/s, ${x.cpuPerEventUs.toFixed(2)} µs server CPU/event (cores: ${x.serverCpu.toFixed(2)} server, ${x.loadCpu.toFixed(2)} load, ${x.otherCpu.toFixed(2)} other)`,
    )
    .join(", ");
  return (
    `${t.server} N=${t.clients} rep ${t.rep}: ${sat}, p50/p99 ${t.latency.p50.toFixed(1)}/${t.latency.p99.toFixed(1)} ms, ` +
    `${(t.rssPerConnection / 1024).toFixed(1)}/${(t.heapPerConnection / 1024).toFixed(1)} KB rss/heap per conn, ` +
    `accept ${(t.acceptMs / 1000).toFixed(2)} s, ${t.allDelivered ? "all delivered" : "NOT ALL DELIVERED"}`
  );
}

async function main(): Promise<void> {
  const s = settings();
  const machine = {
    cpus: cpus().length,
    cpu: cpus()[0]?.model ?? "unknown",
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    node: process.version,
    platform: `${process.platform} ${process.arch}`,
  };
  // The Redis row needs a Redis: without one it is skipped, loudly (the smoke test fails on it under CI).
  const skipped: { server: ServerKind | PhaseName; reason: string }[] = [];
  const fanout = s.phases.includes("fanout");
  let redis: RedisTarget | undefined;
  if (fanout && s.servers.includes("runcast-redis")) {
    const admin = await connectRedis();
    if (typeof admin === "string") {
      skipped.push({ server: "runcast-redis", reason: admin });
      s.servers = s.servers.filter((kind) => kind !== "runcast-redis");
      const bar = "!".repeat(78);
      log(`\n${bar}\n  SKIPPED runcast-redis: ${admin}\n  (set REDIS_URL, or run scripts/ensure-redis.sh)\n${bar}\n`);
    } else {
      redis = { admin, prefix: `runcast-bench:${randomUUID().slice(0, 8)}` };
    }
  }
  log(`runcast benchmark: ${JSON.stringify({ ...s, machine, redisPrefix: redis?.prefix })}`);
  await compileChildren();
  const trials: Trial[] = [];
  const began = Date.now();
  // On a shared machine, how busy it was says how far to trust the figures.
  const loadAtStart = loadavg();
  for (let rep = 1; rep <= (fanout ? s.reps : 0); rep++) {
    for (const clients of s.clients) {
      // Rotate the order every rep, so no server always runs first on a warm or cold machine.
      const order = s.servers.map((_, i) => s.servers[(i + rep - 1) % s.servers.length] as ServerKind);
      for (const kind of order) {
        const t = await trial(kind, clients, rep, s, redis);
        trials.push(t);
        log(describe(t));
      }
    }
  }
  if (redis !== undefined) {
    // Each trial already removed its keys; this catches any a failed trial left.
    await deleteKeys(redis.admin, redis.prefix);
    await redis.admin.quit();
  }
  const rows = summarize(trials);

  let storm: StormTrial[] = [];
  let stormFailures: StormFailure[] = [];
  if (s.phases.includes("storm")) {
    const ran = await runStormPhase(s.storm, log);
    if ("skipped" in ran) {
      skipped.push({ server: "storm", reason: ran.skipped });
      const bar = "!".repeat(78);
      log(`\n${bar}\n  SKIPPED the storm phase: ${ran.skipped}\n${bar}\n`);
    } else {
      storm = ran.trials;
      stormFailures = ran.failures;
    }
  }
  // The scoped phase: the three kinds on one server through the fan-out trial, K=10, alternating within a rep.
  const scopedTrials: Trial[] = [];
  if (s.phases.includes("scoped")) {
    for (let rep = 1; rep <= s.scoped.reps; rep++) {
      for (const clients of s.scoped.clients) {
        const order = rep % 2 === 1 ? [...SCOPED_KINDS] : [...SCOPED_KINDS].reverse();
        for (const kind of order) {
          const t = await trial(kind, clients, rep, { ...s, shapes: [10] }, undefined);
          scopedTrials.push(t);
          log(describe(t));
        }
      }
    }
  }
  const scoped = scopedRows(scopedTrials);
  let deploy: DeployTrial[] = [];
  let deployFailures: DeployFailure[] = [];
  const notRun = s.phases
    .filter((p): p is keyof typeof PENDING_PHASES => p in PENDING_PHASES)
    .map((phase): { phase: PhaseName; reason: string } => ({ phase, reason: pendingReason(phase) }));
  if (s.phases.includes("deploy")) {
    if (!drainPresent()) {
      notRun.push({
        phase: "deploy",
        reason:
          "needs operations (`close({ drainMs })` spreading stream ends over a window), which this version of runcast does not have",
      });
    } else {
      const ran = await runDeployPhase(s.deploy, log);
      if ("skipped" in ran) {
        skipped.push({ server: "deploy", reason: ran.skipped });
        const bar = "!".repeat(78);
        log(`\n${bar}\n  SKIPPED the deploy phase: ${ran.skipped}\n${bar}\n`);
      } else {
        deploy = ran.trials;
        deployFailures = ran.failures;
      }
    }
  }
  for (const x of notRun) log(`phase ${x.phase} not run: ${x.reason}`);

  const result = {
    date: new Date().toISOString(),
    machine,
    settings: s,
    smoke: SMOKE,
    durationSec: (Date.now() - began) / 1000,
    loadAverage: { start: loadAtStart, end: loadavg() },
    skipped,
    notRun,
    rows,
    trials,
    storm,
    stormFailures,
    scoped,
    scopedTrials,
    deploy,
    deployFailures,
  };
  const out = process.env.BENCH_OUT;
  if (out !== undefined && out !== "") {
    mkdirSync(dirname(out), { recursive: true });
    writeFileSync(out, `${JSON.stringify(result, null, 2)}\n`);
  } else {
    const dir = join(__dirname, "results");
    mkdirSync(dir, { recursive: true });
    const file = join(dir, `${result.date.replace(/[:.]/g, "-")}.json`);
    writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
    writeFileSync(join(dir, "latest.json"), `${JSON.stringify(result, null, 2)}\n`);
    log(`wrote ${file}`);
  }
  const redisRows = rows.some((row) => row.server === "runcast-redis")
    ? `\nruncast over Redis, two processes (medians of per-rep ratios to the hand-written server):\n\n${redisHeadline(rows)}\n`
    : "";
  const skips = skipped.map((x) => `\nSKIPPED ${x.server}: ${x.reason}\n`).join("");
  const fanoutTables =
    trials.length === 0
      ? ""
      : `\n${table(rows)}\n\nruncast against the others (medians of per-rep ratios):\n\n${headline(rows)}\n${redisRows}`;
  const stormTables =
    storm.length === 0
      ? ""
      : `\nReconnect storm (RedisRunSource, ${s.storm.runs} busy runs, every client back at once with Last-Event-ID):\n\n${stormTable(storm)}\n` +
        `\nRedis per resume with the history doubled, and with the missed events doubled (resume cache off):\n\n${stormDoubling(storm)}\n` +
        `\nRedis work of the serving process during the storm, per command or script:\n\n${stormCommands(storm)}\n`;
  const pending = notRun.map((x) => `\nNOT RUN ${x.phase}: ${x.reason}\n`).join("");
  const failed = stormFailures
    .map(
      (x) =>
        `\nFAILED storm N=${x.clients} history ${x.history}/run missed ${x.missed}/run resume cache ${x.resumeCache ? "on" : "off"}: ${x.error}\n`,
    )
    .join("");
  const scopedTables =
    scoped.length === 0
      ? ""
      : `\nScoped (global stream, 100 runs over 100 tags, K=10, coalesceMs ${s.scoped.coalesceMs}; clients' tokens scoped to one tag each, against unscoped tokens on the same server; ` +
        `ratios to the unscoped trial of the same rep; only in the runcast-scoped-even rows does a scoped client get as many events as an unscoped one):\n\n${scopedTable(scoped)}\n`;
  const costs = deployCostTables(deploy);
  const deployTables =
    deploy.length === 0
      ? ""
      : `\nDeploy (two RedisRunSource processes, ${s.deploy.runs} busy runs; one closes with close({ drainMs }), its clients resume on the other; all at once = drainMs 0 with one fixed ${s.deploy.retryMs} ms retry for every client, as before runcast jittered retry:):\n\n${deployTable(deploy)}\n` +
        `\nDeploy, where the survivor's own-client latency went (writer send -> survivor's router -> written to the client's socket -> read by the own clients' load process; event-loop delay beyond a ${LOOP_RESOLUTION_MS} ms timer):\n\n${costs.latency}\n` +
        `\nDeploy, CPU per second of each window (cores; "machine busy" counts every process on the machine, "other work" is what the benchmark's processes do not account for):\n\n${costs.cpu}\n`;
  const deployFailed = deployFailures.map((x) => `\nFAILED ${describeDeployFailure(x)}\n`).join("");
  process.stdout.write(
    `${fanoutTables}${stormTables}${scopedTables}${deployTables}${failed}${deployFailed}${skips}${pending}`,
  );
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
