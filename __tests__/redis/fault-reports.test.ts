import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import type { Redis } from "ioredis";
import type { ErrorContext, SseRouterOptions } from "../../lib/options";
import { type RedisErrorContext, RedisRunSource, type RedisRunSourceOptions } from "../../lib/redis";
import type { Envelope } from "../../lib/schema";
import type { LiveGap, LogGap, LogPage, LogQuery } from "../../lib/source";
import { serve, type TestServer } from "../helpers/server";
import { SseStream } from "../helpers/sse";
import {
  adminClient,
  Collector,
  deleteKeys,
  delivered,
  describeRedis,
  expectedAfter,
  FaultyProxy,
  freePort,
  killConnections,
  newPrefix,
  RedisServerProcess,
  readLog,
  within,
} from "./support";

jest.setTimeout(60_000);

const WAIT_MS = 20_000;

/** What a source told its `onError`. */
type Report = [message: string, context: RedisErrorContext];

/** A RedisRunSource that runs `strike` (a fault) alongside its second log read: in the middle of a resume. */
class StrikingSource extends RedisRunSource {
  strike: (() => Promise<void>) | undefined;
  struck: Promise<void> | undefined;
  reads = 0;

  override async readLog(query: LogQuery): Promise<LogPage | LogGap | undefined> {
    this.reads++;
    if (this.reads === 2 && this.strike !== undefined) this.struck = this.strike();
    return super.readLog(query);
  }
}

/** Writes `count` events on `runId`, a hundred at a time without waiting for each. */
async function events(source: RedisRunSource, runId: string, count: number): Promise<void> {
  for (let from = 0; from < count; from += 100) {
    const batch: Promise<unknown>[] = [];
    for (let seq = from; seq < Math.min(count, from + 100); seq++) {
      batch.push(source.recordEvent(runId, { type: "unit.progress", seq }));
    }
    await Promise.all(batch);
  }
}

describeRedis("RedisRunSource faults, reported as what they are", () => {
  let redis: RedisServerProcess;
  let dir: string;
  let admin: Redis;
  const closing: (() => Promise<void>)[] = [];
  const streams: SseStream[] = [];

  beforeAll(async () => {
    // A Redis of our own: the shared one must not be paused or wiped under other users.
    dir = await mkdtemp(path.join(os.tmpdir(), "runcast-redis-faults-"));
    redis = new RedisServerProcess(await freePort(), dir);
    await redis.start();
    admin = adminClient(redis.url);
  }, 30_000);

  afterEach(async () => {
    redis.resume();
    for (const stream of streams.splice(0)) stream.close();
    for (const close of closing.splice(0).reverse()) await close();
  });

  afterAll(async () => {
    admin.disconnect();
    await redis.kill();
    await rm(dir, { recursive: true, force: true });
  }, 30_000);

  const source = (options: RedisRunSourceOptions = {}): StrikingSource => {
    const created = new StrikingSource({ url: redis.url, prefix: newPrefix("faults"), ...options });
    closing.push(async () => {
      await created.close();
      await deleteKeys(admin, created.prefix);
    });
    return created;
  };

  const server = async (
    from: RedisRunSource,
    more: SseRouterOptions = {},
  ): Promise<{ t: TestServer; errors: [string, ErrorContext][] }> => {
    const errors: [string, ErrorContext][] = [];
    const t = await serve(from, {
      ...more,
      onError: (error, context) => errors.push([error instanceof Error ? error.message : String(error), context]),
    });
    closing.push(() => t.close());
    return { t, errors };
  };

  const open = async (url: string, headers: Record<string, string> = {}): Promise<SseStream> => {
    const stream = await SseStream.open(url, headers);
    streams.push(stream);
    return stream;
  };

  it("a paused Redis (SIGSTOP) is reported on each connection once per silence, and nothing recorded meanwhile is lost", async () => {
    const reports = new Collector<Report>();
    const gaps = new Collector<LiveGap>();
    const paused = source({ blockMs: 2_000, unresponsiveMs: 300, onError: (e, c) => reports.listener([e.message, c]) });
    const seen = new Collector<Envelope>();
    paused.subscribe(seen.listener, gaps.listener);
    await paused.createRun({ id: "job" });
    // Delivered: the reader sends its next XREAD now, so it is reported about 2.3 s after the pause.
    await seen.until(1);
    const silent = (role: string) => reports.items.filter(([, c]) => c.phase === "connection" && c.connection === role);

    for (const outage of [1, 2]) {
      redis.pause();
      const write = paused.recordEvent("job", { type: "unit.progress", seq: outage });
      await reports.until(() => silent("commands").length === outage, WAIT_MS);
      if (outage === 1) {
        // The command connection stayed silent for two more seconds, watched every 75 ms,
        // while the reader's wait ran out: one report each.
        await reports.until(() => silent("reader").length === 1, WAIT_MS);
        expect(silent("commands")).toHaveLength(1);
      }
      redis.resume();
      const recorded = await within(write, "the write once Redis answers", WAIT_MS);
      await seen.until((items) => items.some((e) => e.id === recorded.id), WAIT_MS);
    }
    expect(silent("commands").map(([message]) => message)).toEqual([
      expect.stringMatching(
        /^runcast\/redis: Redis has not answered the commands connection for \d+ ms \(waiting for the recordEvent script\); it may be paused/,
      ),
      expect.stringMatching(/Redis has not answered the commands connection/),
    ]);
    expect(silent("reader")[0]?.[0]).toMatch(
      /Redis has not answered the reader connection for \d+ ms \(waiting for an XREAD\).*live envelopes are not delivered meanwhile/,
    );
    expect(seen.items.map((e) => e.type)).toEqual(["state", "event", "event"]);
    expect(gaps.items).toEqual([]);
    expect(reports.items.filter(([, c]) => c.phase !== "connection")).toEqual([]);
  });

  it("a Redis restarted empty is reported as history lost: every stream ends, the run is gone (404), the global stream starts over", async () => {
    const reports = new Collector<Report>();
    const gaps = new Collector<LiveGap>();
    const watched = source({ blockMs: 500, onError: (e, c) => reports.listener([e.message, c]) });
    const { t, errors } = await server(watched);
    watched.subscribe(() => {}, gaps.listener);
    await watched.createRun({ id: "job" });
    await watched.recordEvent("job", { type: "unit.started" });
    const run = await open(`${t.url}/api/runs/job/stream`);
    const global = await open(`${t.url}/api/stream`);
    await Promise.all([run.frameCount(1), global.frameCount(1)]);

    await redis.restartEmpty();
    await Promise.all([run.end(WAIT_MS), global.end(WAIT_MS)]);
    await gaps.until(1, WAIT_MS);
    expect(gaps.items[0]).toMatchObject({ reason: "history_lost" });
    expect(gaps.items[0]?.runId).toBeUndefined();
    const lost = reports.items.filter(([, c]) => c.phase === "read");
    expect(lost).toEqual([
      [
        expect.stringMatching(/Redis lost its data while the reader was away .*Runs recorded before are gone/),
        { phase: "read", connection: "reader" },
      ],
    ]);
    expect(lost[0]?.[0]).not.toMatch(/trimmed|historySize/);
    expect(errors.filter(([, c]) => c.phase === "gap")).toEqual([
      [expect.stringMatching(/\(history_lost\).*ending every stream/), { phase: "gap", runId: undefined }],
    ]);

    // Reconnecting as a browser would: the run is gone; the global stream gets today's runs.
    const again = await open(`${t.url}/api/runs/job/stream`, { "Last-Event-ID": run.frames.at(-1)?.id as string });
    expect(again.status).toBe(404);
    const fresh = await watched.createRun({ id: "fresh" });
    const restarted = await open(`${t.url}/api/stream`, { "Last-Event-ID": global.frames.at(-1)?.id as string });
    await restarted.until(() => restarted.of("state").length > 0, "a state", WAIT_MS);
    expect(restarted.of("state")[0]?.json).toEqual(fresh);
  });

  it("a Redis restarted empty and written to again before the reader is back is history lost, not trimmed", async () => {
    const proxy = await FaultyProxy.start(redis.url);
    closing.push(() => proxy.close());
    const prefix = newPrefix("lost");
    const reports = new Collector<Report>();
    const gaps = new Collector<LiveGap>();
    const behind = source({
      url: proxy.urlFor(redis.url),
      prefix,
      onError: (e, c) => reports.listener([e.message, c]),
    });
    const writer = source({ prefix });
    const seen = new Collector<Envelope>();
    behind.subscribe(seen.listener, gaps.listener);
    await behind.snapshot(); // resolves once the reader knows where it starts
    await writer.createRun({ id: "job" });
    await events(writer, "job", 50);
    await seen.until(51);

    proxy.cut();
    await redis.restartEmpty();
    // The new history's ids all come after the reader's position, as trimmed ones would.
    await writer.createRun({ id: "fresh" });
    await events(writer, "fresh", 50);
    proxy.restore();
    await gaps.until(1, WAIT_MS);
    expect(gaps.items).toEqual([{ reason: "history_lost", message: expect.stringMatching(/began again at \d+-\d+/) }]);
    await seen.until((items) => items.some((e) => e.runId === "fresh" && e.type === "event"), WAIT_MS);
    expect(reports.items.filter(([message]) => /trimmed/.test(message))).toEqual([]);
  });

  it("a feed trimmed past the reader is reported as trimmed: the streams end and a run stream resumes exactly from its run's log", async () => {
    const proxy = await FaultyProxy.start(redis.url);
    closing.push(() => proxy.close());
    const prefix = newPrefix("trimmed");
    const reports = new Collector<Report>();
    const behind = source({
      url: proxy.urlFor(redis.url),
      prefix,
      historySize: 20,
      onError: (e, c) => reports.listener([e.message, c]),
    });
    const writer = source({ prefix, historySize: 20 });
    const { t, errors } = await server(behind);
    await writer.createRun({ id: "job" });
    const run = await open(`${t.url}/api/runs/job/stream`);
    const global = await open(`${t.url}/api/stream`);
    await Promise.all([run.frameCount(1), global.frameCount(1)]);

    proxy.cut();
    await events(writer, "job", 300);
    proxy.restore();
    await Promise.all([run.end(WAIT_MS), global.end(WAIT_MS)]);
    const trimmed = reports.items.filter(([, c]) => c.phase === "read");
    expect(trimmed).toEqual([[expect.stringMatching(/trimmed past \d+-\d+.*raise historySize/), expect.anything()]]);
    expect(errors.filter(([, c]) => c.phase === "gap")).toEqual([
      [expect.stringMatching(/\(trimmed\).*ending every stream/), { phase: "gap", runId: undefined }],
    ]);

    // The run's own log still holds everything after the client's last id.
    const after = run.frames.at(-1)?.id as string;
    const resumed = await open(`${t.url}/api/runs/job/stream`, { "Last-Event-ID": after });
    const last = await writer.recordEvent("job", { type: "unit.last" });
    await resumed.until(() => resumed.frames.some((f) => f.id === last.id), "the live event after the resume", WAIT_MS);
    // Whatever the reader delivered live after the outage came after the gap check, so the
    // client's last id is before the gap, and the run's log fills it exactly.
    expect(delivered([...run.frames.slice(1), ...resumed.frames])).toEqual(
      expectedAfter(await readLog(admin, prefix, "job"), run.frames[0]?.id as string),
    );
  });

  describe.each([
    ["CLIENT KILL of the command connection", "kill"],
    ["a Redis restart (append-only file kept)", "restart"],
  ])("%s in the middle of a resume", (_name, fault) => {
    it("loses nothing: the run stream and the global stream get every envelope after their id, once, in order", async () => {
      const reports = new Collector<Report>();
      const resuming = source({ onError: (e, c) => reports.listener([e.message, c]) });
      // The router's memory of recent frames off: the resume reads Redis while the fault strikes.
      const { t } = await server(resuming, { resumeCacheBytes: 0 });
      await resuming.createRun({ id: "job" });
      await resuming.createRun({ id: "other" });
      const first = (await resuming.readLog({ runId: "job", limit: 1 })) as LogPage;
      await events(resuming, "job", 2_500);
      await resuming.recordEvent("other", { type: "unit.other" });
      resuming.reads = 0;
      resuming.strike =
        fault === "kill"
          ? async () => {
              expect(await killConnections(admin, `${resuming.prefix}:commands`)).toBe(1);
            }
          : async () => {
              await redis.kill();
              await redis.start();
            };

      const after = first.envelopes[0]?.id as string;
      const run = await open(`${t.url}/api/runs/job/stream`, { "Last-Event-ID": after });
      const log = await readLog(admin, resuming.prefix);
      const expected = expectedAfter(log, after, ["job"]);
      await run.frameCount(expected.length, WAIT_MS);
      expect(resuming.reads).toBeGreaterThan(2);
      await within(resuming.struck ?? Promise.reject(new Error("no strike")), "the fault", WAIT_MS);
      await reports.until((items) => items.some(([, c]) => c.phase === "connection"), WAIT_MS);

      resuming.reads = 0;
      const global = await open(`${t.url}/api/stream`, { "Last-Event-ID": after });
      const expectedGlobal = expectedAfter(log, after);
      await global.frameCount(expectedGlobal.length, WAIT_MS);
      await within(resuming.struck ?? Promise.reject(new Error("no strike")), "the fault", WAIT_MS);

      const live = await resuming.recordEvent("job", { type: "unit.live" });
      await run.until(() => run.frames.some((f) => f.id === live.id), "the live event", WAIT_MS);
      await global.until(() => global.frames.some((f) => f.id === live.id), "the live event", WAIT_MS);
      const full = await readLog(admin, resuming.prefix);
      expect(delivered(run.frames)).toEqual(expectedAfter(full, after, ["job"]));
      expect(delivered(global.frames)).toEqual(expectedAfter(full, after));
      expect(run.of("event")).toHaveLength(2_501);
    });
  });
});
