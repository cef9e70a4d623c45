import { MemoryRunSource } from "../../lib/index";
import { serve, type TestServer } from "../helpers/server";
import { SseStream } from "../helpers/sse";

describe("resuming with Last-Event-ID", () => {
  let source: MemoryRunSource;
  let t: TestServer;
  const closing: (() => Promise<void>)[] = [];

  beforeEach(async () => {
    source = new MemoryRunSource({ historySize: 50, maxRunLogSize: 50 });
    t = await serve(source, { heartbeatMs: 60_000 });
  });
  afterEach(async () => {
    for (const close of closing.splice(0)) await close();
    await t.close();
  });

  it("a reconnect gets exactly the missed frames of its run, in order, then live frames", async () => {
    source.createRun({ id: "r" });
    source.createRun({ id: "other" });
    const first = await SseStream.open(`${t.url}/api/runs/r/stream`);
    await first.frameCount(1);
    source.recordEvent("r", { type: "unit.started", n: 1 });
    await first.frameCount(2);
    first.close();
    const lastSeen = first.frames.at(-1)?.id as string;

    const missed = [
      source.recordEvent("r", { type: "unit.completed", n: 2 }),
      source.recordEvent("other", { type: "unit.started", n: 99 }),
      source.recordEvent("r", { type: "unit.started", n: 3 }),
    ].filter((e) => e.runId === "r");
    const second = await SseStream.open(`${t.url}/api/runs/r/stream`, { "Last-Event-ID": lastSeen });
    await second.frameCount(2);
    const live = source.recordEvent("r", { type: "unit.completed", n: 4 });
    await second.frameCount(3);
    expect(second.frames.map((f) => f.id)).toEqual([...missed.map((e) => e.id), live.id]);
    expect(second.frames.map((f) => f.json.n)).toEqual([2, 3, 4]);
    second.close();
  });

  it("takes the resume point from the lastEventId query parameter too", async () => {
    source.createRun({ id: "r" });
    const mark = source.lastId as string;
    const e = source.recordEvent("r", { type: "unit.started" });
    const stream = await SseStream.open(`${t.url}/api/runs/r/stream?lastEventId=${encodeURIComponent(mark)}`);
    await stream.frameCount(1);
    expect(stream.frames.map((f) => f.id)).toEqual([e.id]);
    stream.close();
  });

  it("resumes without a gap from the initial snapshot's cursor, before any event happened", async () => {
    source.createRun({ id: "r" });
    const first = await SseStream.open(`${t.url}/api/runs/r/stream`);
    await first.frameCount(1);
    first.close();
    const e = source.recordEvent("r", { type: "unit.started" });
    const second = await SseStream.open(`${t.url}/api/runs/r/stream`, {
      "Last-Event-ID": first.frames[0]?.id as string,
    });
    await second.frameCount(1);
    expect(second.frames.map((f) => [f.event, f.id])).toEqual([["event", e.id]]);
    second.close();
  });

  it("sends resync (trimmed) and a fresh state snapshot first when the run's log no longer reaches back", async () => {
    source.createRun({ id: "r" });
    const old = source.lastId as string;
    for (let i = 0; i < 60; i++) source.recordEvent("r", { type: "unit.progress", n: i });
    source.updateRun("r", { status: "running", completed_units: 7 });
    const cursor = source.lastId;
    // A router without memory of recent frames (which would still hold `old`): the log answers.
    const forgetful = await serve(source, { heartbeatMs: 60_000, resumeCacheBytes: 0 });
    closing.push(() => forgetful.close());
    const stream = await SseStream.open(`${forgetful.url}/api/runs/r/stream`, { "Last-Event-ID": old });
    await stream.frameCount(2);
    const live = source.recordEvent("r", { type: "unit.started", n: 60 });
    await stream.frameCount(3);
    expect(stream.frames[0]).toMatchObject({ event: "resync", id: undefined, json: { reason: "trimmed", runId: "r" } });
    expect(stream.frames[1]?.event).toBe("state");
    expect(stream.frames[1]?.json).toMatchObject({ status: "running", completed_units: 7 });
    expect(stream.frames[1]?.id).toBe(cursor);
    expect(stream.frames[2]?.id).toBe(live.id);
    stream.close();
  });

  it("treats an id from another server process as unknown and resyncs", async () => {
    source.createRun({ id: "r", total_units: 4 });
    const stream = await SseStream.open(`${t.url}/api/runs/r/stream`, { "Last-Event-ID": "1234-56" });
    await stream.frameCount(2);
    expect(stream.frames[0]).toMatchObject({ event: "resync", json: { reason: "unknown_id", runId: "r" } });
    expect(stream.frames[1]?.event).toBe("state");
    expect(stream.frames[1]?.json.total_units).toBe(4);
    stream.close();
  });

  it("the global stream replays every run's missed frames once, in order", async () => {
    source.createRun({ id: "a" });
    const first = await SseStream.open(`${t.url}/api/stream`);
    await first.frameCount(1);
    first.close();
    const missed = [
      source.createRun({ id: "b" }) && source.lastId,
      source.recordEvent("a", { type: "unit.started" }).id,
      source.recordEvent("b", { type: "unit.started" }).id,
      source.completeRun("a", { status: "completed" }).id,
    ];
    const second = await SseStream.open(`${t.url}/api/stream`, { "Last-Event-ID": first.frames[0]?.id as string });
    await second.frameCount(4);
    const live = source.recordEvent("b", { type: "unit.completed" });
    await second.frameCount(5);
    expect(second.frames.map((f) => f.id)).toEqual([...missed, live.id]);
    expect(second.frames.map((f) => f.event)).toEqual(["state", "event", "event", "complete", "event"]);
    second.close();
  });

  it("a resumed stream of a run that ended meanwhile gets the rest, complete included, then ends", async () => {
    source.createRun({ id: "r" });
    const mark = source.lastId as string;
    const e = source.recordEvent("r", { type: "unit.started" });
    const c = source.completeRun("r", { status: "completed" });
    const stream = await SseStream.open(`${t.url}/api/runs/r/stream`, { "Last-Event-ID": mark });
    await stream.end();
    expect(stream.frames.map((f) => f.id)).toEqual([e.id, c.id]);
  });

  it("answers 204 to a reconnect at the run's complete frame", async () => {
    source.createRun({ id: "r" });
    const c = source.completeRun("r", { status: "completed" });
    const stream = await SseStream.open(`${t.url}/api/runs/r/stream`, { "Last-Event-ID": c.id as string });
    await stream.end();
    expect(stream.status).toBe(204);
    expect(stream.frames).toHaveLength(0);
  });

  it("answers an id that merely sorts after the complete (not one of the run's) with resync, state and complete", async () => {
    source.createRun({ id: "r" });
    const c = source.completeRun("r", { status: "completed" });
    source.createRun({ id: "later" });
    const [epoch] = (c.id as string).split("-");
    for (const id of [source.lastId as string, "abc", "9999999999999-1", `${epoch}-99999`, crypto.randomUUID()]) {
      const stream = await SseStream.open(`${t.url}/api/runs/r/stream`, { "Last-Event-ID": id });
      await stream.end();
      expect(stream.status).toBe(200);
      expect(stream.frames.map((f) => f.event)).toEqual(["resync", "state", "complete"]);
      expect(stream.frames[0]?.json).toEqual({ reason: "unknown_id", runId: "r" });
      expect(stream.frames[2]?.id).toBe(c.id);
    }
  });

  it("answers 204 at the complete frame even when the history no longer reaches back to it", async () => {
    source.createRun({ id: "r" });
    const c = source.completeRun("r", { status: "completed" });
    source.createRun({ id: "busy" });
    for (let i = 0; i < 60; i++) source.recordEvent("busy", { type: "unit.progress", n: i });
    // The global history lost it; the run's own log still holds it.
    expect(source.replay(c.id as string)).toBeNull();
    expect(source.replay(c.id as string, "r")).toEqual([]);
    const stream = await SseStream.open(`${t.url}/api/runs/r/stream`, { "Last-Event-ID": c.id as string });
    await stream.end();
    expect(stream.status).toBe(204);
  });
});
