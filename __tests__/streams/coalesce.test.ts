import type { Socket } from "node:net";
import { MemoryRunSource, type SseRouterOptions, sseRouter } from "../../lib/index";
import { serve, type TestServer } from "../helpers/server";
import { SseStream } from "../helpers/sse";

/** Resolves after the turn's immediates: a frame published before it was flushed already when coalesceMs is 0. */
const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

describe("coalesceMs: live frames written at most every coalesceMs", () => {
  let source: MemoryRunSource;
  let t: TestServer;
  const streams: SseStream[] = [];
  /** Socket writes to stream clients after their response head, by request path. */
  let writes: number;

  async function start(options: SseRouterOptions): Promise<void> {
    source = new MemoryRunSource();
    source.createRun({ id: "r" });
    writes = 0;
    t = await serve(source, options, (app) => {
      // Counts what runcast writes to the socket once the stream has begun: its live chunks.
      app.use((req, res, next) => {
        const socket = req.socket as Socket & { write: Socket["write"] };
        const write = socket.write.bind(socket) as (...args: unknown[]) => boolean;
        socket.write = ((...args: unknown[]) => {
          if (res.headersSent) writes++;
          return write(...args);
        }) as Socket["write"];
        next();
      });
    });
  }

  async function open(path: string, headers: Record<string, string> = {}): Promise<SseStream> {
    const stream = await SseStream.open(`${t.url}${path}`, headers);
    streams.push(stream);
    return stream;
  }

  afterEach(async () => {
    for (const stream of streams.splice(0)) stream.close();
    await t.close();
  });

  it.each([
    [0, 20],
    [200, 2],
  ])(
    "coalesceMs %p: 20 events recorded one per turn reach a client in about %p writes, all of them, in order",
    async (coalesceMs, expected) => {
      await start({ coalesceMs, heartbeatMs: 60_000 });
      const run = await open("/api/runs/r/stream");
      const global = await open("/api/stream");
      await Promise.all([run.frameCount(1), global.frameCount(1)]);
      const before = writes;
      for (let i = 0; i < 20; i++) {
        source.recordEvent("r", { type: "unit.progress", i });
        await nextTurn();
      }
      for (const stream of [run, global]) {
        await stream.until(() => stream.of("event").length === 20, "the 20 events");
        expect(stream.of("event").map((frame) => frame.json.i)).toEqual([...Array(20).keys()]);
      }
      // Two clients: each write goes to both. A loaded machine may split a 200 ms window once more.
      const perClient = (writes - before) / 2;
      if (coalesceMs === 0) expect(perClient).toBe(expected);
      else expect(perClient).toBeLessThanOrEqual(expected + 2);
    },
  );

  it("sends the first frame after a quiet spell at once and holds the next; a client ended meanwhile resumes without loss", async () => {
    await start({ coalesceMs: 60_000, heartbeatMs: 50 });
    const stream = await open("/api/runs/r/stream?heartbeat=event");
    await stream.frameCount(1);
    source.recordEvent("r", { type: "unit.started" });
    // Leading edge: nothing was written live before it, so it goes out at the end of its turn.
    await stream.until(() => stream.of("event").length === 1, "the first event, without waiting 60 s");
    source.recordEvent("r", { type: "unit.finished" });
    const beats = stream.of("heartbeat").length;
    // Heartbeats go out; the second event is held for the rest of the 60 s window.
    await stream.until(() => stream.of("heartbeat").length >= beats + 2, "two heartbeats after the second event");
    expect(stream.of("event").map((frame) => frame.json.type)).toEqual(["unit.started"]);
    // Closing ends the stream without it; the client resumes from what it has and gets it.
    const lastId = stream.of("event")[0]?.id as string;
    await t.router.close();
    await stream.end();
    const resumed = await serve(source, { coalesceMs: 60_000 });
    try {
      const next = await SseStream.open(`${resumed.url}/api/runs/r/stream`, { "Last-Event-ID": lastId });
      streams.push(next);
      await next.until(() => next.of("event").length === 1, "the held event, from the log");
      expect(next.of("event")[0]?.json.type).toBe("unit.finished");
      expect(next.of("state")).toEqual([]);
    } finally {
      for (const stream of streams.splice(0)) stream.close();
      await resumed.close();
    }
  });

  it("writes held frames at once when they pass maxBufferedBytes in all, however long coalesceMs is", async () => {
    await start({ coalesceMs: 60_000, heartbeatMs: 60_000, maxBufferedBytes: 4_000 });
    const stream = await open("/api/runs/r/stream");
    await stream.frameCount(1);
    source.recordEvent("r", { type: "unit.started" });
    await stream.until(() => stream.of("event").length === 1, "the first event");
    // About 200 characters of frame each: past 4,000 within some 20 events.
    for (let i = 0; i < 40; i++) {
      source.recordEvent("r", { type: "unit.progress", i, note: "x".repeat(100) });
      await nextTurn();
    }
    await stream.until(() => stream.of("event").length >= 20, "held frames, without waiting 60 s");
    const got = stream
      .of("event")
      .slice(1)
      .map((frame) => frame.json.i);
    expect(got).toEqual([...Array(got.length).keys()]);
  });

  it.each([-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 31, "5" as unknown as number])(
    "refuses coalesceMs %p with invalid_option",
    (coalesceMs) => {
      expect(() => sseRouter(new MemoryRunSource(), { coalesceMs })).toThrow(
        expect.objectContaining({ code: "invalid_option", message: expect.stringContaining("coalesceMs") }),
      );
    },
  );
});
