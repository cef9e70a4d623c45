import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type DeployFailure, type DeployTrial, parseDeployDrains } from "../../bench/deploy";
import { drainPresent } from "../../bench/phases";
import type { Row, Trial } from "../../bench/report";
import type { ScopedRow } from "../../bench/scoped";
import type { StormFailure, StormTrial } from "../../bench/storm";

interface BenchResult {
  smoke: boolean;
  /** Servers and phases not run, and why (the Redis row when no Redis answers, the storm without redis-server). */
  skipped: { server: string; reason: string }[];
  /** Phases asked for that wait for a feature. */
  notRun: { phase: string; reason: string }[];
  rows: Row[];
  trials: Trial[];
  storm: StormTrial[];
  stormFailures: StormFailure[];
  scoped: ScopedRow[];
  scopedTrials: Trial[];
  deploy: DeployTrial[];
  deployFailures: DeployFailure[];
}

const ON_CI = process.env.CI === "true" || process.env.CI === "1";

/** Runs `npm run bench` in smoke mode (a few clients, short phases) and reads the JSON it writes. */
function runSmoke(out: string, env: Record<string, string> = {}): Promise<{ result: BenchResult; stdout: string }> {
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      [join(__dirname, "../../scripts/bench.js")],
      { env: { ...process.env, BENCH_SMOKE: "1", BENCH_OUT: out, ...env }, timeout: 180_000 },
      (error, stdout, stderr) => {
        if (error !== null) reject(new Error(`${error.message}\n${stderr}`));
        else resolve({ result: JSON.parse(readFileSync(out, "utf8")) as BenchResult, stdout });
      },
    );
  });
}

/** Without what a part needs (Redis, redis-server) it is skipped: a failure under CI, a loud warning elsewhere. */
function skippedLoudly(result: BenchResult, part: string): boolean {
  const skip = result.skipped.find((x) => x.server === part);
  if (skip === undefined) return false;
  if (ON_CI) throw new Error(`the ${part} benchmark was skipped under CI=true: ${skip.reason}`);
  const bar = "!".repeat(78);
  console.warn(`\n${bar}\n  SKIPPED the ${part} benchmark: ${skip.reason}\n${bar}\n`);
  return true;
}

describe("the benchmark in smoke mode", () => {
  const dir = mkdtempSync(join(tmpdir(), "runcast-bench-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  // One smoke run (both default phases) read by the first two tests.
  let smoke: Promise<{ result: BenchResult; stdout: string }> | undefined;
  const defaultRun = (): Promise<{ result: BenchResult; stdout: string }> => {
    smoke ??= runSmoke(join(dir, "smoke.json"));
    return smoke;
  };

  it("runs every server, every client gets every event, and it reports every figure", async () => {
    const { result, stdout } = await defaultRun();
    expect(result.smoke).toBe(true);
    const redisSkip = result.skipped.find((x) => x.server === "runcast-redis");
    if (redisSkip !== undefined) {
      // Without Redis the Redis row cannot run: a failure under CI, a loud skip elsewhere.
      if (ON_CI) throw new Error(`the runcast-redis row was skipped under CI=true: ${redisSkip.reason}`);
      const bar = "!".repeat(78);
      console.warn(`\n${bar}\n  SKIPPED the runcast-redis benchmark row: ${redisSkip.reason}\n${bar}\n`);
    }
    const expected = [
      "better-sse",
      "express-loop",
      "handwritten",
      "runcast",
      ...(redisSkip === undefined ? ["runcast-redis"] : []),
    ];
    expect(result.trials.map((t) => t.server).sort()).toEqual(expected);
    for (const trial of result.trials) {
      expect(trial.connectFailures).toBe(0);
      expect(trial.allDelivered).toBe(true);
      expect(trial.cutOffs).toBe(0);
      expect(trial.latency.complete).toBe(true);
      expect(trial.latency.samples).toBeGreaterThan(0);
      expect(trial.saturation.map((s) => s.k)).toEqual([1, 10]);
      for (const shape of trial.saturation) {
        expect(shape.complete).toBe(true);
        expect(shape.broadcasts).toBeGreaterThan(0);
        expect(shape.eventsPerSec).toBeGreaterThan(0);
        // The server's CPU over the blast and its drain, per event the clients counted.
        expect(shape.serverCpuMs).toBeGreaterThan(0);
        expect(shape.cpuPerEventUs).toBeGreaterThan(0);
        expect(Number.isFinite(shape.cpuPerEventUs)).toBe(true);
      }
      for (const figure of [trial.acceptMs, trial.latency.p50, trial.latency.p99]) {
        expect(Number.isFinite(figure)).toBe(true);
      }
    }
    // Ratios are computed against the hand-written server of the same rep.
    const runcast = result.rows.find((row) => row.server === "runcast");
    expect(Number.isFinite(runcast?.figures.k10.vsHandwritten)).toBe(true);
    expect(Number.isFinite(runcast?.figures.k10.vsBetterSse)).toBe(true);
    expect(Number.isFinite(runcast?.figures.heap.vsExpressLoop)).toBe(true);
    expect(Number.isFinite(runcast?.figures.cpu1.vsHandwritten)).toBe(true);
    expect(Number.isFinite(runcast?.figures.cpu10.vsHandwritten)).toBe(true);
    expect(result.rows.find((row) => row.server === "handwritten")?.figures.k1.vsHandwritten).toBe(1);
    // The tables are printed, server CPU per event in each.
    expect(stdout).toContain("| clients | server |");
    expect(stdout.match(/K=10 CPU\/event/g)?.length ?? 0).toBeGreaterThanOrEqual(2);
    expect(stdout).toMatch(/\| 4 \| runcast \|/);
    if (redisSkip === undefined) {
      // Fan-out through Redis to clients spread over two processes: every one got every event.
      const redis = result.trials.find((t) => t.server === "runcast-redis");
      expect(redis?.processes).toBe(2);
      expect(redis?.allDelivered).toBe(true);
      expect(result.rows.find((row) => row.server === "runcast-redis")?.allDelivered).toBe(true);
      expect(Number.isFinite(result.rows.find((row) => row.server === "runcast-redis")?.figures.k1.vsHandwritten)).toBe(
        true,
      );
      expect(stdout).toMatch(/\| 4 \| runcast-redis \|/);
      expect(stdout).toContain("runcast over Redis, two processes");
    } else {
      expect(stdout).toContain("SKIPPED runcast-redis");
    }
  }, 200_000);

  it("storms: every client back at once with Last-Event-ID gets every event of its run exactly once, and the figures are there", async () => {
    const { result, stdout } = await defaultRun();
    if (skippedLoudly(result, "storm")) return;
    expect(result.stormFailures).toEqual([]);
    // One storm per history size (the smoke's 100 and 200 per run) with the router's resume
    // cache on, then off, each with its figures.
    expect(result.storm.map((t) => [t.history, t.resumeCache])).toEqual([
      [100, true],
      [100, false],
      [200, true],
      [200, false],
    ]);
    for (const t of result.storm) {
      expect(t.clients).toBe(20);
      expect(t.fresh.failed).toBe(0);
      expect(t.resume.failed).toBe(0);
      expect(t.resume.complete).toBe(true);
      // They missed what was recorded while away: the resume had something to replay.
      expect(t.resume.behindMean).toBeGreaterThanOrEqual(t.missed);
      // Exactly once: counted and checked by seq and id, per client, after the writes stopped.
      expect(t.final.complete).toBe(true);
      expect(t.final.events).toBeGreaterThan(0);
      expect(t.final).toMatchObject({
        duplicates: 0,
        missing: 0,
        idsOutOfOrder: 0,
        wrongRun: 0,
        resyncs: 0,
        resumeSnapshots: 0,
        closed: 0,
      });
      expect(t.exact).toBe(true);
      for (const figure of [t.fresh.liveMs, t.resume.liveMs, t.liveRatio, t.cpuPerResumeMs, t.maxWriteMs.storm]) {
        expect(Number.isFinite(figure)).toBe(true);
      }
      expect(t.redisPerFreshUs).toBeGreaterThan(0);
      const resumeCalls = t.redis.storm.items
        .filter((x) => x.connection === "commands")
        .reduce((sum, x) => sum + x.calls, 0);
      if (t.resumeCache) {
        // Every client resumed from an id the router received live: no read of Redis at all.
        expect(resumeCalls).toBe(0);
        expect(t.redisPerResumeUs).toBe(0);
        continue;
      }
      // Redis time per resume, from Redis's own log of the serving process's commands.
      expect(t.redisPerResumeUs).toBeGreaterThan(0);
      expect(t.redisPerResumeTypicalUs).toBeGreaterThan(0);
      expect(t.redis.storm.truncated).toBe(false);
      expect(t.redisCpuPerResumeUs).toBeGreaterThanOrEqual(0);
      expect(Number.isFinite(t.redisCpuPerResumeUs)).toBe(true);
      expect(t.redisCpuNetPerResumeUs).toBeGreaterThanOrEqual(0);
      expect(t.redisCpuNetPerResumeUs).toBeLessThanOrEqual(t.redisCpuPerResumeUs);
      expect(resumeCalls).toBeGreaterThanOrEqual(t.clients);
    }
    expect(stdout).toContain("Reconnect storm");
    expect(stdout).toMatch(/\| 20 \| 200 \| 10 \| off \| [\d.]+ (µs|ms) \| [\d.]+x \|/);
    expect(stdout).toContain("per command or script");
  }, 200_000);

  it("deploys: clients of a process closed with drainMs resume on the other, every event exactly once, figures present", async () => {
    const { result, stdout } = await runSmoke(join(dir, "deploy.json"), { BENCH_PHASES: "deploy" });
    if (!drainPresent()) {
      // A runcast without close({ drainMs }): the phase says so and reports no figure.
      expect(result.notRun.map((x) => x.phase)).toEqual(["deploy"]);
      expect(result.deploy).toEqual([]);
      expect(stdout).toContain("NOT RUN deploy");
      return;
    }
    if (skippedLoudly(result, "deploy")) return;
    expect(result.deployFailures).toEqual([]);
    // The smoke's three closes: the all-at-once baseline (no drain, one fixed retry for every
    // client, runcast before its operations features), no drain with jittered retry:, a drain.
    expect(result.deploy.map((t) => [t.drainMs, t.retry])).toEqual([
      [0, "fixed"],
      [0, "jittered"],
      [1000, "jittered"],
    ]);
    for (const t of result.deploy) {
      expect(t.clients).toBe(20);
      expect(t.retryMs).toBe(3000);
      expect(Number.isFinite(t.arrivalSpanMs)).toBe(true);
      // Every client of the closing process came back on the survivor, each after its stream ended.
      expect(t.failover).toMatchObject({ ended: 20, reconnected: 20, live: 20 });
      expect(t.arrivals).toBeGreaterThanOrEqual(20);
      expect(t.peakPerSec).toBeGreaterThan(0);
      expect(t.peakPerSec).toBeLessThanOrEqual(t.arrivals);
      // Exactly once, for the moved clients and the survivor's own, checked by seq and id after the writes stopped.
      for (const tally of [t.moved, t.ownTally]) {
        expect(tally.complete).toBe(true);
        expect(tally.events).toBeGreaterThan(0);
        expect(tally).toMatchObject({
          duplicates: 0,
          missing: 0,
          idsOutOfOrder: 0,
          wrongRun: 0,
          resyncs: 0,
          resumeSnapshots: 0,
          closed: 0,
        });
      }
      expect(t.lost).toBe(0);
      expect(t.duplicated).toBe(0);
      expect(t.exact).toBe(true);
      expect(t.quiet.samples).toBeGreaterThan(0);
      expect(t.storm.samples).toBeGreaterThan(0);
      for (const figure of [t.quiet.p99, t.storm.p99, t.p99Ratio, t.allReconnectedMs, t.allLiveMs, t.closeMs]) {
        expect(Number.isFinite(figure)).toBe(true);
      }
      expect(t.allLiveMs).toBeGreaterThanOrEqual(t.allReconnectedMs);
      // Where the survivor's latency went, in both windows: every figure there, none negative.
      const finite = (x: number | undefined): void => {
        expect(Number.isFinite(x)).toBe(true);
        expect(x).toBeGreaterThanOrEqual(0);
      };
      for (const [latency, w] of [
        [t.quiet, t.windows.quiet],
        [t.storm, t.windows.move],
      ] as const) {
        expect(w.ms).toBeGreaterThan(0);
        for (const cores of Object.values(w.cores)) finite(cores);
        expect(Object.keys(w.cores).sort()).toEqual(
          ["bench", "closing", "movedLoad", "ownLoad", "redis", "survivor", "writer"].sort(),
        );
        // The survivor served its own clients in every window: it used CPU, and so did Redis.
        expect(w.cores.survivor).toBeGreaterThan(0);
        expect(w.cores.redis).toBeGreaterThan(0);
        finite(w.ours);
        if (process.platform === "linux") {
          finite(w.machine);
          finite(w.other);
        }
        for (const loop of [w.loopDelay.survivor, w.loopDelay.ownLoad]) {
          expect(loop?.samples).toBeGreaterThan(0);
          for (const figure of [loop?.p50, loop?.p99, loop?.max]) finite(figure);
        }
        // Each own client's delivery split at the survivor's stamps of its event.
        const split = latency.split;
        expect(split?.matched).toBeGreaterThan(0);
        expect(split?.unmatched).toBe(0);
        for (const part of [split?.toRouter, split?.inServer, split?.toClient]) {
          finite(part?.p50);
          finite(part?.p99);
        }
        expect(split?.tail.deliveries).toBeGreaterThan(0);
        for (const figure of [split?.tail.total, split?.tail.toRouter, split?.tail.inServer, split?.tail.toClient]) {
          finite(figure);
        }
        // The three parts are the whole latency.
        const tail = split?.tail ?? { total: 0, toRouter: 1, inServer: 0, toClient: 0 };
        expect(tail.toRouter + tail.inServer + tail.toClient).toBeCloseTo(tail.total, 6);
      }
    }
    // The baseline's clients all waited the same 3 s after streams that ended together, so they
    // arrive in a burst; the jittered ones' delays alone spread over 3 s (20 draws from
    // [1.5 s, 4.5 s] span less than 1.5 s with odds of about 2 in 100,000).
    const [baseline, jittered] = result.deploy as [DeployTrial, DeployTrial];
    expect(baseline.arrivalSpanMs * 2).toBeLessThan(jittered.arrivalSpanMs);
    expect(stdout).toContain("Deploy (two RedisRunSource processes");
    // The baseline row is set against nothing; the drained one against the baseline and against drainMs 0 jittered.
    expect(stdout).toMatch(/\| 20 \| 0 \| fixed \| \d+ \| {2}\| {2}\| [\d.]+ ms \|/);
    expect(stdout).toMatch(/\| 20 \| 0 \| jittered \| \d+ \| [\d.]+x \| {2}\| [\d.]+ ms \|/);
    expect(stdout).toMatch(
      /\| 20 \| 1000 \| jittered \| \d+ \| [\d.]+x \| [\d.]+x \| [\d.]+ ms \| [\d.]+ ms \| [\d.]+x \|/,
    );
    // The second and third tables: the latency split and loop delays, the CPU of each process, per window.
    expect(stdout).toContain("Deploy, where the survivor's own-client latency went");
    expect(stdout).toMatch(
      /\| 20 \| 1000 \| jittered \| move \| [\d.]+ \/ [\d.]+ ms \| [\d.]+ \/ [\d.]+ ms \| [\d.]+ \/ [\d.]+ ms \| [\d.]+ \/ [\d.]+ ms \| [\d.]+ = [\d.]+ \+ [\d.]+ \+ [\d.]+ ms \| [\d.]+ \/ [\d.]+ \/ [\d.]+ ms \|/,
    );
    expect(stdout).toContain("Deploy, CPU per second of each window");
    expect(stdout).toMatch(
      /\| 20 \| 0 \| fixed \| quiet \| [\d.]+ s \| [\d.]+ \| [\d.]+ \| [\d.]+ \| [\d.]+ \| [\d.]+ \| [\d.]+ \|/,
    );
  }, 200_000);

  it("reads BENCH_DEPLOY_DRAIN: drainMs values, :fixed for one fixed retry", () => {
    expect(parseDeployDrains("0:fixed, 0,5000")).toEqual([
      { drainMs: 0, retry: "fixed" },
      { drainMs: 0, retry: "jittered" },
      { drainMs: 5000, retry: "jittered" },
    ]);
    for (const bad of ["0:jitter", "-1", "1.5", "fixed"]) expect(() => parseDeployDrains(bad)).toThrow(bad);
  });

  it("scopes: clients with tokens scoped to one of 100 tags get exactly their runs' events, next to unscoped clients, with every figure", async () => {
    const { result, stdout } = await runSmoke(join(dir, "scoped.json"), { BENCH_PHASES: "scoped" });
    expect(result.notRun).toEqual([]);
    // The fan-out tables are not run; the phase's three kinds on one server are, in the same rep.
    expect(result.trials).toEqual([]);
    expect(result.scopedTrials.map((t) => t.server)).toEqual([
      "runcast-global",
      "runcast-scoped",
      "runcast-scoped-even",
    ]);
    for (const t of result.scopedTrials) {
      expect(t.clients).toBe(200);
      expect(t.connectFailures).toBe(0);
      expect(t.cutOffs).toBe(0);
      expect(t.allDelivered).toBe(true);
      // By count: each client got its view's share of every wave exactly, nothing of another run.
      expect(t.exactShares).toBe(true);
      expect(t.saturation.map((x) => x.k)).toEqual([10]);
      expect(t.saturation[0]?.eventsPerSec).toBeGreaterThan(0);
      expect(t.latency.samples).toBeGreaterThan(0);
      expect(Number.isFinite(t.heapPerConnection)).toBe(true);
    }
    const trialOf = (server: string): Trial | undefined => result.scopedTrials.find((t) => t.server === server);
    const [global, scoped, even] = ["runcast-global", "runcast-scoped", "runcast-scoped-even"].map(trialOf);
    // K=10 into every one of the 100 runs per tick: whole ticks of 1,000 broadcasts.
    expect((even?.saturation[0]?.broadcasts ?? 1) % 1000).toBe(0);
    // The latency wave gave each even client as many events as each unscoped one (a few samples
    // split across reads are skipped), where each client of runcast-scoped got one.
    expect(even?.latency.samples).toBeGreaterThan((global?.latency.samples ?? 0) / 2);
    expect(scoped?.latency.samples).toBeLessThan((global?.latency.samples ?? 0) / 10);
    // One row per scoped kind, each against the unscoped trial.
    expect(result.scoped.map((row) => [row.clients, row.kind])).toEqual([
      [200, "runcast-scoped"],
      [200, "runcast-scoped-even"],
    ]);
    for (const row of result.scoped) {
      expect(row.reps).toBe(1);
      expect(row.allDelivered).toBe(true);
      for (const ratio of [row.eventsRatio, row.heapRatio, row.cpuRatio]) {
        expect(ratio).toBeGreaterThan(0);
        expect(Number.isFinite(ratio)).toBe(true);
      }
    }
    expect(stdout).toContain("Scoped (global stream, 100 runs over 100 tags");
    expect(stdout).toMatch(/\| 200 \| 0\.1 event: [^|]+\| [\d.]+[kM] \| [\d.]+[kM] \| [\d.]+x \|/);
    expect(stdout).toMatch(/\| 200 \| 10 events, as unscoped: [^|]+\| [\d.]+[kM] \| [\d.]+[kM] \| [\d.]+x \|/);
  }, 200_000);
});
