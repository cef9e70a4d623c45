import { MemoryRunSource } from "../../lib/index";
import { serve, type TestServer } from "../helpers/server";
import { SseStream } from "../helpers/sse";

describe("the per-run stream", () => {
  let source: MemoryRunSource;
  let t: TestServer;

  beforeEach(async () => {
    source = new MemoryRunSource();
    t = await serve(source, { heartbeatMs: 60_000 });
  });
  afterEach(() => t.close());

  it("answers 200 with the SSE headers, a retry delay and the run's state as its first frame", async () => {
    source.createRun({ id: "run_123", total_units: 3 });
    const stream = await SseStream.open(`${t.url}/api/runs/run_123/stream`);
    await stream.frameCount(1);
    expect(stream.status).toBe(200);
    expect(stream.headers["content-type"]).toBe("text/event-stream");
    expect(stream.headers["cache-control"]).toContain("no-cache");
    expect(stream.headers["cache-control"]).toContain("no-transform");
    expect(stream.headers["x-accel-buffering"]).toBe("no");
    // retryMs 3000, jittered per connection within [0.5, 1.5] times it.
    expect(stream.retry).toBeGreaterThanOrEqual(1500);
    expect(stream.retry).toBeLessThanOrEqual(4500);
    expect(stream.frames[0]?.event).toBe("state");
    expect(stream.frames[0]?.json).toEqual({ id: "run_123", status: "pending", completed_units: 0, total_units: 3 });
    expect(stream.frames[0]?.id).toBe(source.lastId);
    stream.close();
  });

  it("delivers events and states as the source records them, in order, with their ids", async () => {
    source.createRun({ id: "r1", total_units: 2 });
    const stream = await SseStream.open(`${t.url}/api/runs/r1/stream`);
    await stream.frameCount(1);
    const started = source.recordEvent("r1", { type: "unit.started", unit: "auth-service" });
    source.updateRun("r1", { status: "running", completed_units: 1 });
    await stream.frameCount(3);
    expect(stream.frames.map((f) => f.event)).toEqual(["state", "event", "state"]);
    expect(stream.frames[1]?.json).toMatchObject({ type: "unit.started", run_id: "r1", unit: "auth-service" });
    expect(stream.frames[1]?.id).toBe(started.id);
    expect(stream.frames[2]?.json).toMatchObject({ status: "running", completed_units: 1 });
    stream.close();
  });

  it("does not send one run's frames to another run's watchers", async () => {
    source.createRun({ id: "a" });
    source.createRun({ id: "b" });
    const a = await SseStream.open(`${t.url}/api/runs/a/stream`);
    await a.frameCount(1);
    source.recordEvent("b", { type: "unit.started", unit: "x" });
    source.recordEvent("a", { type: "unit.started", unit: "y" });
    await a.frameCount(2);
    expect(a.frames.slice(1).map((f) => f.json.run_id)).toEqual(["a"]);
    a.close();
  });

  it("gives several clients of one run every frame, in the same order", async () => {
    source.createRun({ id: "shared" });
    const clients = await Promise.all([1, 2, 3, 4, 5].map(() => SseStream.open(`${t.url}/api/runs/shared/stream`)));
    await Promise.all(clients.map((c) => c.frameCount(1)));
    for (let i = 0; i < 50; i++) source.recordEvent("shared", { type: "unit.progress", unit: `u${i}`, n: i });
    await Promise.all(clients.map((c) => c.frameCount(51)));
    for (const client of clients) {
      expect(client.frames.slice(1).map((f) => f.json.n)).toEqual([...Array(50).keys()]);
      client.close();
    }
  });

  it("sends one complete frame when the run ends, then ends the response", async () => {
    source.createRun({ id: "ending" });
    const stream = await SseStream.open(`${t.url}/api/runs/ending/stream`);
    await stream.frameCount(1);
    const complete = source.completeRun("ending", { status: "failed", completed_units: 0, error: "boom" });
    await stream.end();
    expect(stream.frames.map((f) => f.event)).toEqual(["state", "complete"]);
    expect(stream.frames[1]?.json).toMatchObject({ id: "ending", status: "failed", error: "boom" });
    expect(stream.frames[1]?.id).toBe(complete.id);
    expect(t.router.clientCount("ending")).toBe(0);
  });

  it("gives a finished run's state, then its real complete frame, then ends", async () => {
    source.createRun({ id: "done", total_units: 1 });
    const complete = source.completeRun("done", { status: "completed", completed_units: 1 });
    source.createRun({ id: "later" });
    const stream = await SseStream.open(`${t.url}/api/runs/done/stream`);
    await stream.end();
    expect(stream.frames.map((f) => f.event)).toEqual(["state", "complete"]);
    expect(stream.frames[0]?.json).toMatchObject({ status: "completed", completed_units: 1 });
    expect(stream.frames[1]?.id).toBe(complete.id);
  });

  it("sends heartbeat comments every heartbeatMs", async () => {
    const fast = await serve(source, { heartbeatMs: 25 });
    try {
      source.createRun({ id: "quiet" });
      const stream = await SseStream.open(`${fast.url}/api/runs/quiet/stream`);
      await stream.until(() => stream.comments.length >= 3, "three heartbeats");
      expect(stream.frames).toHaveLength(1);
      stream.close();
    } finally {
      await fast.close();
    }
  });

  it("delivers an event recorded while the client is connecting exactly once, after the initial state", async () => {
    source.createRun({ id: "seam" });
    let n = 0;
    // Record on every turn of the event loop while clients connect, so some land mid-connect.
    const writer = setInterval(() => source.recordEvent("seam", { type: "unit.progress", n: n++ }), 0);
    try {
      const clients = await Promise.all([...Array(10)].map(() => SseStream.open(`${t.url}/api/runs/seam/stream`)));
      await Promise.all(clients.map((c) => c.frameCount(2)));
      clearInterval(writer);
      const last = n - 1;
      await Promise.all(clients.map((c) => c.until(() => c.frames.at(-1)?.json.n === last, `event ${last}`)));
      for (const client of clients) {
        expect(client.frames[0]?.event).toBe("state");
        const seen = client.frames.slice(1).map((f) => f.json.n as number);
        // Contiguous from wherever the snapshot left off: no gap, no duplicate.
        const first = seen[0] ?? 0;
        expect(seen).toEqual([...Array(last - first + 1).keys()].map((i) => i + first));
        client.close();
      }
    } finally {
      clearInterval(writer);
    }
  });
});
