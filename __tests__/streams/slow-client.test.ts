import { MemoryRunSource } from "../../lib/index";
import { eventually, serve, type TestServer } from "../helpers/server";
import { SseStream } from "../helpers/sse";

const PAYLOAD = "x".repeat(8 * 1024);
const MAX_EVENTS = 4000; // 32 MiB: far more than loopback socket buffers hold

describe("a client that stops reading", () => {
  let source: MemoryRunSource;
  let t: TestServer;

  beforeEach(async () => {
    source = new MemoryRunSource({ historySize: MAX_EVENTS + 10 });
    t = await serve(source, { heartbeatMs: 60_000, maxBufferedBytes: 64 * 1024 });
  });
  afterEach(() => t.close());

  it("is cut off past maxBufferedBytes without slowing the others, and its reconnect replays the rest", async () => {
    source.createRun({ id: "r" });
    const slow = await SseStream.open(`${t.url}/api/runs/r/stream`);
    const fast = await SseStream.open(`${t.url}/api/runs/r/stream`);
    await Promise.all([slow.frameCount(1), fast.frameCount(1)]);
    slow.pause();

    // Record a burst per turn of the event loop until the slow client is cut off.
    let recorded = 0;
    await new Promise<void>((resolve, reject) => {
      const tick = (): void => {
        if (t.router.stats().slowClientsCutOff > 0) resolve();
        else if (recorded >= MAX_EVENTS) reject(new Error("the slow client was never cut off"));
        else {
          for (let i = 0; i < 20; i++) source.recordEvent("r", { type: "unit.progress", n: recorded++, pad: PAYLOAD });
          setImmediate(tick);
        }
      };
      tick();
    });
    expect(t.router.stats().slowClientsCutOff).toBe(1);
    await eventually(() => t.router.clientCount("r") === 1, "the slow client to be dropped");

    // The fast client kept up and gets every event, in order.
    await fast.frameCount(1 + recorded, 15_000);
    expect(fast.frames.slice(1).map((f) => f.json.n)).toEqual([...Array(recorded).keys()]);

    // The slow client resumes from the last frame it parsed and ends up with the full sequence.
    const had = slow.frames.slice(1).map((f) => f.json.n as number);
    const lastId = slow.frames.at(-1)?.id as string;
    slow.close();
    const resumed = await SseStream.open(`${t.url}/api/runs/r/stream`, { "Last-Event-ID": lastId });
    await resumed.frameCount(recorded - had.length, 15_000);
    expect([...had, ...resumed.frames.map((f) => f.json.n as number)]).toEqual([...Array(recorded).keys()]);
    expect(t.router.stats().slowClientsCutOff).toBe(1);
    resumed.close();
    fast.close();
  }, 30_000);

  it("a fast client is not cut off by one burst much larger than maxBufferedBytes", async () => {
    source.createRun({ id: "r" });
    const fast = await SseStream.open(`${t.url}/api/runs/r/stream`);
    await fast.frameCount(1);
    // 2 MiB recorded within one tick: 32 times the limit.
    for (let i = 0; i < 256; i++) source.recordEvent("r", { type: "unit.progress", n: i, pad: PAYLOAD });
    await fast.frameCount(257, 15_000);
    source.recordEvent("r", { type: "unit.progress", n: 256 });
    await fast.frameCount(258);
    expect(t.router.stats().slowClientsCutOff).toBe(0);
    fast.close();
  }, 30_000);

  it("a large replay does not get a fast client cut off", async () => {
    source.createRun({ id: "r" });
    const mark = source.lastId as string;
    for (let i = 0; i < 512; i++) source.recordEvent("r", { type: "unit.progress", n: i, pad: PAYLOAD });
    const resumed = await SseStream.open(`${t.url}/api/runs/r/stream`, { "Last-Event-ID": mark });
    await resumed.frameCount(512, 15_000);
    source.recordEvent("r", { type: "unit.progress", n: 512 });
    await resumed.frameCount(513);
    expect(t.router.stats().slowClientsCutOff).toBe(0);
    resumed.close();
  }, 30_000);
});
