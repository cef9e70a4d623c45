import { MemoryRunSource } from "../../lib/index";
import { serve, type TestServer } from "../helpers/server";
import { SseStream } from "../helpers/sse";

describe("the global stream", () => {
  let source: MemoryRunSource;
  let t: TestServer;

  beforeEach(async () => {
    source = new MemoryRunSource();
    t = await serve(source, { heartbeatMs: 60_000 });
  });
  afterEach(() => t.close());

  it("starts with one state frame per active run, the last one carrying the cursor", async () => {
    source.createRun({ id: "a" });
    source.createRun({ id: "b" });
    source.createRun({ id: "finished" });
    source.completeRun("finished", { status: "cancelled" });
    const stream = await SseStream.open(`${t.url}/api/stream`);
    await stream.frameCount(2);
    expect(stream.frames.map((f) => [f.event, f.json.id])).toEqual([
      ["state", "a"],
      ["state", "b"],
    ]);
    expect(stream.frames[0]?.id).toBeUndefined();
    expect(stream.frames[1]?.id).toBe(source.lastId);
    stream.close();
  });

  it("sees every run's frames, new runs included, and stays open when runs complete", async () => {
    source.createRun({ id: "a" });
    const stream = await SseStream.open(`${t.url}/api/stream`);
    await stream.frameCount(1);
    source.createRun({ id: "b" });
    source.recordEvent("a", { type: "unit.started", unit: "x" });
    source.recordEvent("b", { type: "unit.started", unit: "y" });
    source.completeRun("a", { status: "completed" });
    source.updateRun("b", { status: "running" });
    await stream.frameCount(6);
    expect(stream.frames.slice(1).map((f) => `${f.event}:${String(f.json.id ?? f.json.run_id)}`)).toEqual([
      "state:b",
      "event:a",
      "event:b",
      "complete:a",
      "state:b",
    ]);
    expect(stream.ended).toBe(false);
    expect(t.router.clientCount()).toBe(1);
    stream.close();
  });

  it("counts global and per-run clients together, and each run apart", async () => {
    source.createRun({ id: "a" });
    const g = await SseStream.open(`${t.url}/api/stream`);
    const r1 = await SseStream.open(`${t.url}/api/runs/a/stream`);
    const r2 = await SseStream.open(`${t.url}/api/runs/a/stream`);
    await Promise.all([g.frameCount(1), r1.frameCount(1), r2.frameCount(1)]);
    expect(t.router.clientCount()).toBe(3);
    expect(t.router.clientCount("a")).toBe(2);
    expect(t.router.clientCount("other")).toBe(0);
    for (const s of [g, r1, r2]) s.close();
  });

  it("broadcast reaches the run's watchers and the global stream; broadcastAll reaches everyone", async () => {
    source.createRun({ id: "a" });
    source.createRun({ id: "b" });
    const g = await SseStream.open(`${t.url}/api/stream`);
    const a = await SseStream.open(`${t.url}/api/runs/a/stream`);
    const b = await SseStream.open(`${t.url}/api/runs/b/stream`);
    await Promise.all([g.frameCount(2), a.frameCount(1), b.frameCount(1)]);
    const ts = new Date().toISOString();
    t.router.broadcast({ type: "event", runId: "a", data: { type: "note.added", run_id: "a", ts } });
    t.router.broadcastAll({ type: "event", runId: "b", data: { type: "maintenance.notice", run_id: "b", ts } });
    await Promise.all([g.frameCount(4), a.frameCount(3), b.frameCount(2)]);
    expect(g.frames.slice(2).map((f) => f.json.type)).toEqual(["note.added", "maintenance.notice"]);
    expect(a.frames.slice(1).map((f) => f.json.type)).toEqual(["note.added", "maintenance.notice"]);
    expect(b.frames.slice(1).map((f) => f.json.type)).toEqual(["maintenance.notice"]);
    expect(() =>
      t.router.broadcast({ type: "event", runId: "a", data: { type: "BAD TYPE", run_id: "a", ts } }),
    ).toThrow(expect.objectContaining({ code: "invalid_envelope" }));
    for (const s of [g, a, b]) s.close();
  });

  it("stats() counts clients, frames and bytes sent", async () => {
    source.createRun({ id: "a" });
    const s1 = await SseStream.open(`${t.url}/api/runs/a/stream`);
    const s2 = await SseStream.open(`${t.url}/api/stream`);
    await Promise.all([s1.frameCount(1), s2.frameCount(1)]);
    source.recordEvent("a", { type: "unit.started" });
    await Promise.all([s1.frameCount(2), s2.frameCount(2)]);
    const stats = t.router.stats();
    expect(stats).toMatchObject({ clients: 2, framesSent: 4, channels: 1, slowClientsCutOff: 0, invalidEnvelopes: 0 });
    const framesBytes = (s: SseStream) => Buffer.byteLength(s.raw.slice(s.raw.indexOf("event:")));
    expect(stats.bytesSent).toBe(framesBytes(s1) + framesBytes(s2));
    s1.close();
    s2.close();
  });
});
