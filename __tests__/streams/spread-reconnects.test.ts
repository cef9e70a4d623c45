import { MemoryRunSource, sseRouter } from "../../lib/index";
import { serve, type TestServer, within } from "../helpers/server";
import { type SseFrame, SseStream } from "../helpers/sse";

function eventNumbers(frames: readonly SseFrame[]): number[] {
  return frames.filter((f) => f.event === "event").map((f) => f.json.n as number);
}

describe("retry: jittered per connection", () => {
  let t: TestServer;
  afterEach(() => t.close());

  it("200 connections get retry values that differ and stay within [0.5, 1.5] x retryMs", async () => {
    const source = new MemoryRunSource();
    source.createRun({ id: "r" });
    t = await serve(source, { heartbeatMs: 60_000, retryMs: 3000 });
    const streams: SseStream[] = [];
    try {
      for (let batch = 0; batch < 4; batch++) {
        const opened = await Promise.all(
          Array.from({ length: 50 }, (_, i) =>
            SseStream.open(i % 5 === 0 ? `${t.url}/api/stream` : `${t.url}/api/runs/r/stream`),
          ),
        );
        streams.push(...opened);
        await Promise.all(opened.map((s) => s.frameCount(1)));
      }
      const retries = streams.map((s) => s.retry as number);
      expect(retries).toHaveLength(200);
      for (const retry of retries) {
        expect(Number.isInteger(retry)).toBe(true);
        expect(retry).toBeGreaterThanOrEqual(1500);
        expect(retry).toBeLessThanOrEqual(4500);
      }
      // Spread across the range, not one value: uniform draws cover both ends.
      expect(new Set(retries).size).toBeGreaterThan(100);
      expect(Math.min(...retries)).toBeLessThan(2000);
      expect(Math.max(...retries)).toBeGreaterThan(4000);
    } finally {
      for (const s of streams) s.close();
    }
  }, 30_000);
});

describe("maxStreamMs", () => {
  const MAX_STREAM_MS = 600;
  let source: MemoryRunSource;
  let t: TestServer;
  let writer: NodeJS.Timeout | undefined;
  const opened: SseStream[] = [];

  beforeEach(async () => {
    source = new MemoryRunSource({ historySize: 10_000 });
    t = await serve(source, { heartbeatMs: 60_000, retryMs: 50, maxStreamMs: MAX_STREAM_MS });
  });
  afterEach(async () => {
    clearInterval(writer);
    for (const s of opened.splice(0)) s.close();
    await t.close();
  });

  it("ends each stream after a jittered share of maxStreamMs; each resumes exactly", async () => {
    source.createRun({ id: "r" });
    let recorded = 0;
    const record = (): void => {
      source.recordEvent("r", { type: "unit.progress", n: recorded++ });
    };
    const CLIENTS = 8;
    const openedAt: number[] = [];
    const streams = await Promise.all(
      Array.from({ length: CLIENTS }, (_, i) => {
        openedAt[i] = performance.now();
        return SseStream.open(i === 0 ? `${t.url}/api/stream` : `${t.url}/api/runs/r/stream`);
      }),
    );
    opened.push(...streams);
    // Events start once every stream has its snapshot, so each must see all of them.
    await Promise.all(streams.map((s) => s.frameCount(1)));
    record();
    writer = setInterval(record, 15);
    const lifetimes = await within(
      Promise.all(streams.map((s, i) => s.end(MAX_STREAM_MS * 4).then(() => performance.now() - (openedAt[i] ?? 0)))),
      "every stream to end",
      MAX_STREAM_MS * 5,
    );
    for (const lifetime of lifetimes) {
      // At least 0.75 x maxStreamMs (timer slack aside), at most maxStreamMs plus scheduling slack.
      expect(lifetime).toBeGreaterThanOrEqual(MAX_STREAM_MS * 0.75 - 20);
      expect(lifetime).toBeLessThan(MAX_STREAM_MS + 2000);
    }
    // Each stream drew its own lifetime: they did not all end together.
    expect(Math.max(...lifetimes) - Math.min(...lifetimes)).toBeGreaterThan(15);
    expect(t.router.stats().clientsEnded.max_duration).toBe(CLIENTS);
    // Ended normally (the response finished), each with frames received.
    for (const s of streams) expect(s.frames.length).toBeGreaterThan(1);

    const resumed = await Promise.all(
      streams.map((s, i) =>
        SseStream.open(i === 0 ? `${t.url}/api/stream` : `${t.url}/api/runs/r/stream`, {
          "Last-Event-ID": s.frames.filter((f) => f.id !== undefined).at(-1)?.id ?? "",
        }),
      ),
    );
    opened.push(...resumed);
    clearInterval(writer);
    const total = recorded;
    await Promise.all(
      resumed.map((s, i) =>
        s.until(
          () => eventNumbers((streams[i] as SseStream).frames).length + eventNumbers(s.frames).length >= total,
          `client ${i} to catch up`,
        ),
      ),
    );
    for (const [i, s] of resumed.entries()) {
      expect(s.of("resync")).toEqual([]);
      expect([...eventNumbers((streams[i] as SseStream).frames), ...eventNumbers(s.frames)]).toEqual([
        ...Array(total).keys(),
      ]);
    }
    expect(t.router.stats().streamStarts).toMatchObject({ fresh: CLIENTS, replayed: CLIENTS, resync: 0 });
  }, 30_000);

  it("rejects a maxStreamMs that is not a positive integer a timer can wait", () => {
    const source2 = new MemoryRunSource();
    // 2^31 ms would fire at once: every stream would end as soon as it started.
    for (const maxStreamMs of [0, -5, 1.5, Number.POSITIVE_INFINITY, 2 ** 31]) {
      expect(() => sseRouter(source2, { maxStreamMs })).toThrow(expect.objectContaining({ code: "invalid_option" }));
    }
  });
});
