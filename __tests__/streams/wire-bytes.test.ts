import { MemoryRunSource } from "../../lib/index";
import { serve, type TestServer } from "../helpers/server";
import { SseStream } from "../helpers/sse";

/**
 * The bytes themselves, for clients that are not spec parsers: @microsoft/fetch-event-source
 * dispatches a message at every blank line, so a blank line may only ever end a frame. The
 * spec parser of SseStream (eventsource-parser) must still read `retry` and every frame.
 */

/** The blocks of `raw` ended by a blank line (what such clients dispatch as messages). */
function dispatchedBlocks(raw: string): string[] {
  const parts = raw.split("\n\n");
  return parts.slice(0, -1);
}

/** `retry:` as sent (retryMs 2500, jittered per connection within [0.5, 1.5] times it) and as a spec parser read it. */
function expectRetry(stream: SseStream): void {
  const sent = Number(/^retry: (\d+)\n/.exec(stream.raw)?.[1]);
  expect(sent).toBeGreaterThanOrEqual(1250);
  expect(sent).toBeLessThanOrEqual(3750);
  expect(stream.retry).toBe(sent);
}

/** Every dispatched block is a frame: it has a `data:` line. */
function expectOnlyFrameBlocks(raw: string): void {
  const empty = dispatchedBlocks(raw).filter((block) => !/^data:/m.test(block));
  expect(empty).toEqual([]);
}

describe("wire bytes every SSE client reads alike", () => {
  let source: MemoryRunSource;
  let t: TestServer;

  beforeEach(async () => {
    source = new MemoryRunSource();
    t = await serve(source, { heartbeatMs: 60_000, retryMs: 2500 });
  });
  afterEach(() => t.close());

  it("a fresh per-run stream sends `retry: <ms>` in the first frame's block", async () => {
    source.createRun({ id: "r" });
    const stream = await SseStream.open(`${t.url}/api/runs/r/stream`);
    await stream.frameCount(1);
    expect(stream.raw).toMatch(/^retry: \d+\nevent: state\n/);
    expectRetry(stream);
    expect(stream.frames[0]?.event).toBe("state");
    expectOnlyFrameBlocks(stream.raw);
    stream.close();
  });

  it("a resumed stream, a finished run and the global stream start the same way", async () => {
    source.createRun({ id: "r" });
    const first = source.recordEvent("r", { type: "unit.started" });
    source.recordEvent("r", { type: "unit.completed" });
    source.createRun({ id: "done" });
    source.completeRun("done", { status: "completed" });
    const starts = await Promise.all([
      SseStream.open(`${t.url}/api/runs/r/stream`, { "Last-Event-ID": first.id ?? "" }),
      SseStream.open(`${t.url}/api/runs/done/stream`),
      SseStream.open(`${t.url}/api/stream`),
    ]);
    await Promise.all(starts.map((s) => s.frameCount(1)));
    await starts[1]?.end();
    for (const stream of starts) {
      expect(stream.raw).toMatch(/^retry: \d+\n(event|id|data): /);
      expectRetry(stream);
      expectOnlyFrameBlocks(stream.raw);
      stream.close();
    }
    expect(starts[0]?.frames.map((f) => f.json.type)).toEqual(["unit.completed"]);
  });

  it("a resume the log cannot serve starts with `retry` in the block of its resync frame", async () => {
    source.createRun({ id: "r" });
    const stream = await SseStream.open(`${t.url}/api/runs/r/stream`, { "Last-Event-ID": "1-1" });
    await stream.frameCount(2);
    expect(stream.raw).toMatch(/^retry: \d+\nevent: resync\n/);
    expect(stream.frames.map((f) => f.event)).toEqual(["resync", "state"]);
    expectRetry(stream);
    expectOnlyFrameBlocks(stream.raw);
    stream.close();
  });

  it("a global stream with no run to announce holds `retry` until its first frame", async () => {
    const stream = await SseStream.open(`${t.url}/api/stream`);
    await stream.until(() => stream.raw.length > 0, "the first bytes");
    expect(stream.raw).toMatch(/^retry: \d+\n$/);
    source.createRun({ id: "late" });
    await stream.frameCount(1);
    expect(stream.raw).toMatch(/^retry: \d+\nevent: state\n/);
    expectRetry(stream);
    expectOnlyFrameBlocks(stream.raw);
    stream.close();
  });
});

describe("heartbeats", () => {
  let t: TestServer;
  afterEach(() => t.close());

  it("are comment lines without a blank line of their own, skipped by a spec parser", async () => {
    const source = new MemoryRunSource();
    t = await serve(source, { heartbeatMs: 20 });
    source.createRun({ id: "r" });
    const stream = await SseStream.open(`${t.url}/api/runs/r/stream`);
    await stream.frameCount(1);
    await stream.until(() => stream.comments.length >= 3, "three heartbeats");
    source.recordEvent("r", { type: "unit.started" });
    await stream.frameCount(2);
    expect(stream.raw).toMatch(/\n\n:\n:\n:\n/);
    expect(stream.raw).not.toContain(":\n\n");
    expect(stream.frames.map((f) => f.event)).toEqual(["state", "event"]);
    expectOnlyFrameBlocks(stream.raw);
    stream.close();
  });
});
