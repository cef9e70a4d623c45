/**
 * The reconnect-storm phase: N clients watch 10 busy runs on RedisRunSource (a full
 * history behind them), all lose their connection, and all come back at once with
 * `Last-Event-ID`. It measures how long until every one is live again against how long the
 * same clients take to connect fresh, what Redis spent per resume (per command and script,
 * from SLOWLOG), and that every client got every event of its run exactly once. Run once
 * per history size: per-resume Redis work that follows what a client missed does not change
 * when the history doubles.
 */
import { randomUUID } from "node:crypto";
import { loadavg } from "node:os";
import type { Redis } from "ioredis";
import { Child } from "./children";
import { startPrivateRedis } from "./private-redis";
import type {
  LoadReplies,
  LoadRequest,
  RunsWritten,
  ServerReplies,
  ServerRequest,
  WatcherTally,
  WatchReply,
} from "./protocol";
import { connectRedis, deleteKeys } from "./redis-admin";
import { type RedisWork, recordRedisWork } from "./redis-work";

/** Settings of the storm phase (environment `BENCH_STORM_*`, see bench/run.ts). */
export interface StormSettings {
  clients: number[];
  /** Envelopes recorded per run before anyone connects, one trial each: the history the clients resume into. */
  histories: number[];
  /** Events recorded per run while the clients are away, besides the steady flow: one trial each. */
  missed: number[];
  runs: number;
  /** Events per run and second, recorded throughout (busy runs). */
  rate: number;
  /**
   * Whether the serving router keeps its memory of recent frames (`resumeCacheBytes`, on by
   * default), one storm each: on, resumes from ids it received live read no log; off, every
   * resume reads its run's log in Redis (what the Redis figures measure).
   */
  caches: boolean[];
  /** Connections waiting for their head at once, fresh and resuming alike. */
  concurrency: number;
  reps: number;
  timeoutMs: number;
  /** A Redis to use instead of a private one (it is loaded hard and its SLOWLOG settings changed meanwhile). */
  redisUrl: string | undefined;
  serverFlags: string[];
  loadFlags: string[];
}

/** One storm: one client count, one history size. */
export interface StormTrial {
  clients: number;
  /** Envelopes per run recorded before the clients connect. */
  history: number;
  /** Events per run recorded while the clients were away (they missed these and the steady flow meanwhile). */
  missed: number;
  /** The router's memory of recent frames was on (`resumeCacheBytes` default) or off (0). */
  resumeCache: boolean;
  runs: number;
  rep: number;
  /** The source's `historySize` (every run's envelopes together): `runs` x `history`, so the history is full. */
  historySize: number;
  fresh: WatchReply;
  resume: WatchReply;
  /** Time until all were live again, over the time they took to connect fresh (target: at most 2). */
  liveRatio: number;
  /** Redis execution time per client of the serving process's command connection, in µs. */
  redisPerFreshUs: number;
  redisPerResumeUs: number;
  /**
   * The same from each command's median call (calls per resume x median µs per call): what a
   * resume costs Redis without the calls the machine's other work stretched.
   */
  redisPerResumeTypicalUs: number;
  /** Redis CPU per resume (less its steady work) over the events each client missed (`resume.behindMean`), in µs. */
  redisPerMissedUs: number;
  /** Redis's CPU time over the storm (all its work: the writer's too) per resume, in µs. */
  redisCpuPerResumeUs: number;
  /**
   * The same less what Redis spends anyway while the runs go on and the clients are live
   * (its CPU rate in a quiet window after the storm, times the storm's length): what the
   * resumes themselves cost, whatever the storm's length.
   */
  redisCpuNetPerResumeUs: number;
  /** The serving process's CPU time per client in each wave, in ms. */
  cpuPerFreshMs: number;
  cpuPerResumeMs: number;
  /** The writer's slowest write while the clients resumed, and once they were live again, in ms. */
  maxWriteMs: { storm: number; after: number };
  redis: { fresh: RedisWork; storm: RedisWork };
  /** Every event each watcher received, checked once the writes stopped. */
  final: WatcherTally;
  /** Every client got every event of its run once, in order, with no resync and no snapshot instead. */
  exact: boolean;
  /** Where the phase's Redis ran. */
  redisServer: "private" | "given";
  /** The machine's 1-minute load average when the storm began (2 cores: above 2, others competed). */
  loadAverage: number;
}

/** How long Redis's steady work is measured after the storm. */
const QUIET_WINDOW_MS = 2000;

type Server = Child<ServerRequest, ServerReplies>;
type Load = Child<LoadRequest, LoadReplies>;

/** Source options of both processes: the global history holds exactly `history` envelopes of each run. */
function sourceOptions(s: StormSettings, history: number): Record<string, number> {
  // `maxRunLogSize` is for sources that keep a log per run; others ignore it.
  return { historySize: s.runs * history, maxRunLogSize: history };
}

/** A wave's reply as sent over IPC, where JSON turned NaN (never live) into null: NaN again. */
function waveOf(reply: WatchReply): WatchReply {
  const nan = (x: number | null): number => x ?? Number.NaN;
  return { ...reply, liveMs: nan(reply.liveMs), liveP50Ms: nan(reply.liveP50Ms), liveP99Ms: nan(reply.liveP99Ms) };
}

async function serversCpuMs(server: Server): Promise<number> {
  return (await server.request({ cmd: "cpu" })).ms;
}

/** The work of the serving process's command connection (the one resumes and snapshots use), in µs. */
function commandsUsec(work: RedisWork): number {
  return work.items.filter((x) => x.connection === "commands").reduce((sum, x) => sum + x.usec, 0);
}

/** The same, counting every call of a command at its median call's time. */
function commandsTypicalUsec(work: RedisWork): number {
  return work.items.filter((x) => x.connection === "commands").reduce((sum, x) => sum + x.calls * x.p50Usec, 0);
}

async function stormTrial(
  s: StormSettings,
  redis: { url: string; admin: Redis; kind: "private" | "given"; prefix: string },
  clients: number,
  history: number,
  missed: number,
  cache: boolean,
  rep: number,
  log: (message: string) => void,
): Promise<StormTrial> {
  const prefix = `${redis.prefix}:${clients}:${history}:${missed}:${cache ? "cache" : "log"}:${rep}`;
  const options = JSON.stringify({
    url: redis.url,
    run: false,
    source: sourceOptions(s, history),
    router: cache ? {} : { resumeCacheBytes: 0 },
  });
  const serverFlags = ["--expose-gc", ...s.serverFlags];
  const starting = await Promise.allSettled([
    Child.start<LoadRequest, LoadReplies>("load", [], s.loadFlags),
    Child.start<ServerRequest, ServerReplies>("server", ["runcast-redis", prefix, "writer", options], serverFlags),
    Child.start<ServerRequest, ServerReplies>("server", ["runcast-redis", prefix, "reader", options], serverFlags),
  ]);
  const failed = starting.find((x): x is PromiseRejectedResult => x.status === "rejected");
  if (failed !== undefined) {
    await Promise.all(starting.map((x) => (x.status === "fulfilled" ? x.value.child.stop() : undefined)));
    throw failed.reason;
  }
  const [loadStart, writerStart, servingStart] = starting.map(
    (x) => (x as PromiseFulfilledResult<{ child: Load | Server; port: number }>).value,
  ) as [{ child: Load }, { child: Server }, { child: Server; port: number }];
  const load = loadStart.child;
  const writer = writerStart.child;
  const serving = servingStart.child;
  const ports = [servingStart.port];
  const runIds = Array.from({ length: s.runs }, (_, i) => `run_storm_${i}`);
  const paths = runIds.map((id) => `/api/runs/${id}/stream`);
  // Redis logs every command while a window is recorded: never leave it so, even on failure.
  let recording: (() => Promise<RedisWork>) | undefined;
  const finishRecording = (): Promise<RedisWork> => {
    const finish = recording;
    recording = undefined;
    if (finish === undefined) throw new Error("storm: no Redis window recorded");
    return finish();
  };
  try {
    await writer.request({ cmd: "runs-create", runs: runIds });
    await writer.request({ cmd: "runs-record", perRun: history }, 600_000);
    await writer.request({ cmd: "runs-flow", perSecond: s.rate });

    // Fresh: every client connects to its run's stream with nothing to resume.
    recording = await recordRedisWork(redis.admin, prefix);
    let cpu = await serversCpuMs(serving);
    const fresh = waveOf(
      await load.request(
        {
          cmd: "watch",
          mode: "fresh",
          ports,
          paths,
          count: clients,
          concurrency: s.concurrency,
          timeoutMs: s.timeoutMs,
        },
        s.timeoutMs + 30_000,
      ),
    );
    const cpuFresh = (await serversCpuMs(serving)) - cpu;
    const freshWork = await finishRecording();
    log(
      `storm N=${clients} history ${history}/run missed ${missed}/run${cacheLabel(cache)}: ${fresh.complete ? `all live in ${(fresh.liveMs / 1000).toFixed(2)} s` : "NOT ALL LIVE"} after connecting fresh`,
    );
    if (!fresh.complete) throw new Error(`storm: not every client connected fresh within ${s.timeoutMs} ms`);
    // Every client holds an event of its run (where its checks start, and what it resumes after).
    const baseline = await load.request({ cmd: "watch-wait", events: 1, timeoutMs: s.timeoutMs }, s.timeoutMs + 30_000);
    if (!baseline.complete) throw new Error("storm: not every client received an event after connecting");

    // The outage: every connection drops at once, and the runs go on without them.
    await load.request({ cmd: "watch-drop" });
    const deadline = Date.now() + 30_000;
    while ((await serving.request({ cmd: "stats" })).clients > 0) {
      if (Date.now() > deadline) throw new Error("storm: the server still counts clients 30 s after they left");
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    await writer.request({ cmd: "runs-record", perRun: missed }, 600_000);
    const target: RunsWritten = await writer.request({ cmd: "runs-record", perRun: 0 });

    // The storm: every client back at once, each with the id of the last frame it got.
    const loadAverage = loadavg()[0] ?? Number.NaN;
    recording = await recordRedisWork(redis.admin, prefix);
    cpu = await serversCpuMs(serving);
    const resume = waveOf(
      await load.request(
        {
          cmd: "watch",
          mode: "resume",
          ports,
          paths,
          count: clients,
          concurrency: s.concurrency,
          seqs: target.seqs,
          timeoutMs: s.timeoutMs,
        },
        s.timeoutMs + 30_000,
      ),
    );
    const cpuResume = (await serversCpuMs(serving)) - cpu;
    const stormWork = await finishRecording();
    const duringStorm = await writer.request({ cmd: "runs-record", perRun: 0 });

    // Live again: events recorded after the storm reach everyone; then the writes stop and every count is checked.
    const later = await writer.request({ cmd: "runs-record", perRun: 1 });
    await load.request({ cmd: "watch-wait", seqs: later.seqs, timeoutMs: s.timeoutMs }, s.timeoutMs + 30_000);
    // Redis's steady work with everyone live and the runs going on, to take out of the storm's.
    recording = await recordRedisWork(redis.admin, prefix);
    await new Promise((resolve) => setTimeout(resolve, QUIET_WINDOW_MS));
    const quietWork = await finishRecording();
    const background = (quietWork.cpuMs / quietWork.windowMs) * stormWork.windowMs;
    const finals = await writer.request({ cmd: "runs-flow", perSecond: 0 });
    const final = await load.request(
      { cmd: "watch-wait", seqs: finals.seqs, timeoutMs: s.timeoutMs },
      s.timeoutMs + 30_000,
    );
    const exact =
      fresh.failed === 0 &&
      resume.failed === 0 &&
      final.complete &&
      final.duplicates === 0 &&
      final.missing === 0 &&
      final.idsOutOfOrder === 0 &&
      final.wrongRun === 0 &&
      final.resyncs === 0 &&
      final.resumeSnapshots === 0 &&
      final.closed === 0;
    const trial: StormTrial = {
      clients,
      history,
      missed,
      resumeCache: cache,
      runs: s.runs,
      rep,
      historySize: s.runs * history,
      fresh,
      resume,
      liveRatio: resume.liveMs / fresh.liveMs,
      redisPerFreshUs: commandsUsec(freshWork) / clients,
      redisPerResumeUs: commandsUsec(stormWork) / clients,
      redisPerResumeTypicalUs: commandsTypicalUsec(stormWork) / clients,
      redisPerMissedUs: (Math.max(0, stormWork.cpuMs - background) * 1000) / clients / resume.behindMean,
      redisCpuPerResumeUs: (stormWork.cpuMs * 1000) / clients,
      redisCpuNetPerResumeUs: (Math.max(0, stormWork.cpuMs - background) * 1000) / clients,
      cpuPerFreshMs: cpuFresh / clients,
      cpuPerResumeMs: cpuResume / clients,
      maxWriteMs: { storm: duringStorm.maxWriteMs, after: finals.maxWriteMs },
      redis: { fresh: freshWork, storm: stormWork },
      final,
      exact,
      redisServer: redis.kind,
      loadAverage,
    };
    log(describeStorm(trial));
    return trial;
  } finally {
    if (recording !== undefined) await finishRecording().catch(() => undefined);
    await Promise.all([load.stop(), writer.stop(), serving.stop()]);
    await deleteKeys(redis.admin, prefix);
  }
}

/** How a storm's router served resumes, for its log lines. */
function cacheLabel(cache: boolean): string {
  return cache ? " (resume cache on)" : " (resume cache off: every resume reads Redis)";
}

/** One line about a storm, for the log. */
export function describeStorm(t: StormTrial): string {
  return (
    `storm N=${t.clients} history ${t.history}/run missed ${t.missed}/run${cacheLabel(t.resumeCache)} (rep ${t.rep}): fresh live in ${(t.fresh.liveMs / 1000).toFixed(2)} s, ` +
    `resumed live in ${t.resume.complete ? `${(t.resume.liveMs / 1000).toFixed(2)} s (${t.liveRatio.toFixed(2)}x)` : `NOT ALL within the timeout (half in ${(t.resume.liveP50Ms / 1000).toFixed(2)} s)`}, ` +
    `${t.resume.behindMean.toFixed(0)} events missed per client, Redis ${t.redisPerResumeUs.toFixed(0)} µs/resume ` +
    `(${t.redisPerFreshUs.toFixed(0)} µs/fresh connect), slowest write during the storm ${t.maxWriteMs.storm.toFixed(0)} ms, ` +
    `${t.exact ? "every event exactly once" : `NOT EXACT ${JSON.stringify(t.final)}`}, load average ${t.loadAverage.toFixed(1)}`
  );
}

/**
 * Runs every storm of the settings, each on a fresh key prefix, on a private Redis (or the
 * one given); answers the trials, or why the phase could not run.
 */
export async function runStormPhase(
  s: StormSettings,
  log: (message: string) => void,
): Promise<{ trials: StormTrial[]; failures: StormFailure[] } | { skipped: string }> {
  let redis: { url: string; admin: Redis; kind: "private" | "given"; stop: () => Promise<void> };
  if (s.redisUrl === undefined) {
    try {
      const started = await startPrivateRedis();
      redis = { ...started, kind: "private" };
    } catch (error) {
      return {
        skipped: `${error instanceof Error ? error.message : String(error)} (or set BENCH_STORM_REDIS to a Redis URL)`,
      };
    }
  } else {
    const admin = await connectRedis(s.redisUrl);
    if (typeof admin === "string") return { skipped: admin };
    redis = { url: s.redisUrl, admin, kind: "given", stop: async () => void (await admin.quit()) };
  }
  const prefix = `runcast-bench-storm:${randomUUID().slice(0, 8)}`;
  const trials: StormTrial[] = [];
  const failures: StormFailure[] = [];
  try {
    for (let rep = 1; rep <= s.reps; rep++) {
      for (const clients of s.clients) {
        for (const history of s.histories) {
          for (const missed of s.missed) {
            for (const cache of s.caches) {
              try {
                trials.push(await stormTrial(s, { ...redis, prefix }, clients, history, missed, cache, rep, log));
              } catch (error) {
                // One storm that could not be measured does not lose the others.
                const message = error instanceof Error ? error.message : String(error);
                failures.push({ clients, history, missed, resumeCache: cache, rep, error: message });
                log(
                  `storm N=${clients} history ${history}/run missed ${missed}/run${cacheLabel(cache)} FAILED: ${message}`,
                );
              }
            }
          }
        }
      }
    }
  } finally {
    await deleteKeys(redis.admin, prefix).catch(() => 0);
    await redis.stop();
  }
  return { trials, failures };
}

/** A storm that could not be measured, and why. */
export interface StormFailure {
  clients: number;
  history: number;
  missed: number;
  resumeCache: boolean;
  rep: number;
  error: string;
}
