import type { Redis } from "ioredis";
import request from "supertest";
import type { SseRouterOptions } from "../../lib/index";
import { RedisRunSource, type RedisRunSourceOptions } from "../../lib/redis";
import { browserStream } from "../helpers/browser-stream";
import { eventually as eventuallyTrue, serve, type TestServer } from "../helpers/server";
import { SseStream } from "../helpers/sse";
import { adminClient, deleteKeys, describeRedis, eventually, newPrefix, REDIS_URL, readLog } from "./support";

jest.setTimeout(30_000);

type Shape = Array<[string, string | undefined]>;

/** [event, id] of every frame, for comparing a stream with a log. */
function shape(frames: readonly { event: string; id: string | undefined }[]): Shape {
  return frames.map((f) => [f.event, f.id]);
}

describeRedis("run logs through the router on RedisRunSource", () => {
  const prefix = newPrefix("router-run-logs");
  let admin: Redis;
  const closing: (() => Promise<void>)[] = [];
  const streams: SseStream[] = [];
  let count = 0;

  /** A source with keys of its own and a server over it; both closed after the test. */
  const deploy = async (
    options: RedisRunSourceOptions = {},
    routing: SseRouterOptions = {},
  ): Promise<{ source: RedisRunSource; t: TestServer }> => {
    const source = new RedisRunSource({ url: REDIS_URL, prefix: `${prefix}:${count++}`, ...options });
    const t = await serve(source, { heartbeatMs: 60_000, retryMs: 20, ...routing });
    closing.push(async () => {
      await t.close();
      await source.close();
    });
    return { source, t };
  };

  const open = async (url: string, headers: Record<string, string> = {}): Promise<SseStream> => {
    const stream = await SseStream.open(url, headers);
    streams.push(stream);
    return stream;
  };

  /** The run's log as Redis holds it, as [type, id]. */
  const logOf = async (source: RedisRunSource, runId: string): Promise<Shape> =>
    (await readLog(admin, source.prefix, runId)).map((entry) => [entry.type, entry.id]);

  beforeAll(() => {
    admin = adminClient();
  });

  afterEach(async () => {
    for (const stream of streams.splice(0)) stream.close();
    for (const close of closing.splice(0)) await close();
  });

  afterAll(async () => {
    await deleteKeys(admin, prefix);
    await admin.quit();
  });

  it("a client joining mid-run with from=start gets every envelope from the first state, in order, once, then live frames", async () => {
    const { source, t } = await deploy({ historySize: 20 });
    await source.createRun({ id: "r", total_units: 3 });
    await source.createRun({ id: "other" });
    for (let i = 0; i < 300; i++) {
      const writes: Promise<unknown>[] = [
        source.recordEvent("r", { type: "unit.progress", n: i }),
        source.recordEvent("other", { type: "unit.progress", n: i }),
      ];
      if (i % 50 === 0) writes.push(source.updateRun("r", { status: "running", completed_units: i / 50 }));
      await Promise.all(writes);
    }
    const stream = await open(`${t.url}/api/runs/r/stream?from=start`);
    await stream.frameCount((await logOf(source, "r")).length);
    await source.recordEvent("r", { type: "unit.started", unit: "late" });
    await source.completeRun("r", { status: "completed", completed_units: 3 });
    await stream.end();
    expect(shape(stream.frames)).toEqual(await logOf(source, "r"));
    expect(stream.frames).toHaveLength(300 + 6 + 1 + 1 + 1);
    expect(stream.frames[0]?.json).toMatchObject({ id: "r", status: "pending" });
    expect(stream.of("resync")).toHaveLength(0);
  });

  it("a finished run's from=start stream is its whole log, ending with complete; its complete's id gets 204", async () => {
    const { source, t } = await deploy();
    await source.createRun({ id: "done" });
    for (let i = 0; i < 10; i++) await source.recordEvent("done", { type: "unit.completed", unit: `u${i}` });
    const complete = await source.completeRun("done", { status: "failed", completed_units: 9 });
    const stream = await open(`${t.url}/api/runs/done/stream?from=start`);
    await stream.end();
    expect(stream.status).toBe(200);
    expect(shape(stream.frames)).toEqual(await logOf(source, "done"));
    expect(stream.frames.at(-1)).toMatchObject({ event: "complete", id: complete.id });
    const again = await open(`${t.url}/api/runs/done/stream?from=start`, { "Last-Event-ID": complete.id as string });
    await again.end();
    expect(again.status).toBe(204);
  });

  it("a quiet run keeps its whole log while busy runs record ten times historySize", async () => {
    const { source, t } = await deploy({ historySize: 20 });
    await source.createRun({ id: "quiet" });
    await source.recordEvent("quiet", { type: "unit.started", unit: "q" });
    await source.createRun({ id: "busy" });
    const busy: Promise<unknown>[] = [];
    for (let i = 0; i < 200; i++) busy.push(source.recordEvent("busy", { type: "unit.progress", n: i }));
    await Promise.all(busy);
    expect(await admin.xlen(`${source.prefix}:log`)).toBeLessThan(200);
    const stream = await open(`${t.url}/api/runs/quiet/stream?from=start`);
    await stream.frameCount(2);
    await source.recordEvent("quiet", { type: "unit.completed", unit: "q" });
    await stream.frameCount(3);
    expect(shape(stream.frames)).toEqual(await logOf(source, "quiet"));
    expect(stream.of("resync")).toHaveLength(0);
  });

  it("a trimmed log: from=start and an old Last-Event-ID get resync (trimmed) then the snapshot at the run's newest id", async () => {
    // The router's memory of recent frames off: it would serve the old id the log no longer holds.
    const { source, t } = await deploy({ maxRunLogSize: 5 }, { resumeCacheBytes: 0 });
    await source.createRun({ id: "r" });
    const [[, old]] = (await logOf(source, "r")) as [[string, string]];
    let newest: string | undefined;
    for (let i = 0; i < 10; i++) newest = (await source.recordEvent("r", { type: "unit.progress", n: i })).id;
    await source.createRun({ id: "later" }); // the feed's newest is another run's: not the cursor
    for (const [query, headers] of [
      ["?from=start", {}],
      ["", { "Last-Event-ID": old }],
      ["?from=start", { "Last-Event-ID": old }],
    ] as const) {
      const stream = await open(`${t.url}/api/runs/r/stream${query}`, headers);
      await stream.frameCount(2);
      expect(stream.frames[0]).toMatchObject({
        event: "resync",
        id: undefined,
        json: { reason: "trimmed", runId: "r" },
      });
      expect(stream.frames[1]).toMatchObject({ event: "state", id: newest });
      stream.close();
    }
  });

  it("an unknown or malformed Last-Event-ID gets resync (unknown_id); a fresh connection never gets resync", async () => {
    const { source, t } = await deploy();
    await source.createRun({ id: "r" });
    await source.createRun({ id: "other" });
    const newest = (await source.recordEvent("r", { type: "unit.started" })).id as string;
    const ofOther = (await source.recordEvent("other", { type: "unit.started" })).id as string;
    for (const id of ["nonsense", "1-1", `${newest}0`, "x".repeat(300), `0${newest}`, ofOther]) {
      const stream = await open(`${t.url}/api/runs/r/stream`, { "Last-Event-ID": id });
      await stream.frameCount(2);
      expect([id, shape(stream.frames)]).toEqual([
        id,
        [
          ["resync", undefined],
          ["state", newest],
        ],
      ]);
      expect(stream.frames[0]?.json).toEqual({ reason: "unknown_id", runId: "r" });
      stream.close();
    }
    const global = await open(`${t.url}/api/stream`, { "Last-Event-ID": "1-1" });
    await global.frameCount(2);
    expect(global.frames[0]).toMatchObject({ event: "resync", json: { reason: "unknown_id" } });
    expect(Object.keys(global.frames[0]?.json ?? {})).toEqual(["reason"]);
    for (const url of [`${t.url}/api/runs/r/stream`, `${t.url}/api/stream`]) {
      const fresh = await open(url);
      await fresh.frameCount(1);
      expect(fresh.frames[0]?.event).toBe("state");
      expect(fresh.raw).not.toContain("resync");
    }
  });

  it("the global stream resyncs with reason trimmed when the feed no longer reaches back", async () => {
    // The router's memory of recent frames off: it would serve what the feed no longer holds.
    const { source, t } = await deploy({ historySize: 5 }, { resumeCacheBytes: 0 });
    await source.createRun({ id: "a" });
    const [[, old]] = (await logOf(source, "a")) as [[string, string]];
    let newest: string | undefined;
    for (let i = 0; i < 300; i++) newest = (await source.recordEvent("a", { type: "unit.progress", n: i })).id;
    const stream = await open(`${t.url}/api/stream`, { "Last-Event-ID": old });
    await stream.frameCount(2);
    expect(stream.frames[0]).toMatchObject({ event: "resync", json: { reason: "trimmed" } });
    expect(stream.frames[1]).toMatchObject({ event: "state", id: newest });
  });

  it("a browser's reconnect of a from=start stream (same URL plus Last-Event-ID) resumes and does not restart", async () => {
    const { source, t } = await deploy();
    await source.createRun({ id: "r" });
    for (let i = 0; i < 5; i++) await source.recordEvent("r", { type: "unit.progress", n: i });
    const { es, seen, requests } = browserStream(t, "/api/runs/r/stream?from=start");
    try {
      await eventuallyTrue(() => seen.length === 6, "the run's log");
      t.server.closeAllConnections();
      await eventuallyTrue(() => requests.length >= 2 && t.router.clientCount("r") === 1, "the reconnect");
      await source.recordEvent("r", { type: "unit.completed", n: 5 });
      await source.completeRun("r", { status: "completed" });
      await eventuallyTrue(() => seen.some(([type]) => type === "complete"), "the complete frame");
    } finally {
      es.close();
    }
    const log = await logOf(source, "r");
    expect(requests[1]).toBe(log[5]?.[1]);
    expect(seen).toEqual(log);
  });

  it("forgets a finished run whole after finishedRunTtlMs: its streams answer 404", async () => {
    const { source, t } = await deploy({ finishedRunTtlMs: 300 });
    await source.createRun({ id: "r" });
    await source.completeRun("r", { status: "completed" });
    const finished = await open(`${t.url}/api/runs/r/stream?from=start`);
    await finished.end();
    expect(shape(finished.frames).map(([event]) => event)).toEqual(["state", "complete"]);
    await eventually(async () => (await source.getRun("r")) === undefined, "the finished run to expire", 10_000);
    const res = await request(t.app).get("/api/runs/r/stream?from=start");
    expect(res.status).toBe(404);
    expect(res.body.error.code).toBe("run_not_found");
  });
});
