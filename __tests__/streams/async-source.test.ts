import { MemoryRunSource } from "../../lib/index";
import { serve, type TestServer } from "../helpers/server";
import { LaggingSource } from "../helpers/sources";
import { SseStream } from "../helpers/sse";

describe("an asynchronous source whose reads and live delivery lag", () => {
  let inner: MemoryRunSource;
  let t: TestServer;

  beforeEach(async () => {
    inner = new MemoryRunSource();
    t = await serve(new LaggingSource(inner), { heartbeatMs: 60_000 });
  });
  afterEach(() => t.close());

  it("delivers every event exactly once across the snapshot seam, though live delivery lags the snapshot", async () => {
    inner.createRun({ id: "r" });
    let n = 0;
    const writer = setInterval(() => inner.recordEvent("r", { type: "unit.progress", n: n++ }), 0);
    let clients: SseStream[] = [];
    try {
      clients = await Promise.all([...Array(8)].map(() => SseStream.open(`${t.url}/api/runs/r/stream`)));
      await Promise.all(clients.map((c) => c.frameCount(3)));
    } finally {
      clearInterval(writer);
    }
    const last = n - 1;
    await Promise.all(clients.map((c) => c.until(() => c.frames.at(-1)?.json.n === last, `event ${last}`)));
    for (const client of clients) {
      const [snapshot, ...rest] = client.frames;
      expect(snapshot?.event).toBe("state");
      // Everything after the snapshot's cursor, once each: compare with the store's own replay.
      const expected = inner.replay(snapshot?.id as string, "r") ?? [];
      expect(rest.map((f) => f.id)).toEqual(expected.map((e) => e.id));
      client.close();
    }
  });

  it("replays through an async iterable, and ends a run that completed meanwhile", async () => {
    inner.createRun({ id: "r" });
    const mark = inner.lastId as string;
    const ids = [1, 2, 3].map((n) => inner.recordEvent("r", { type: "unit.progress", n }).id);
    const stream = await SseStream.open(`${t.url}/api/runs/r/stream`, { "Last-Event-ID": mark });
    await stream.frameCount(3);
    const c = inner.completeRun("r", { status: "completed" });
    await stream.end();
    expect(stream.frames.map((f) => f.id)).toEqual([...ids, c.id]);
  });

  it("serves the global stream from async listRuns/snapshot", async () => {
    inner.createRun({ id: "a" });
    inner.createRun({ id: "b" });
    const stream = await SseStream.open(`${t.url}/api/stream`);
    await stream.frameCount(2);
    inner.recordEvent("b", { type: "unit.started" });
    await stream.frameCount(3);
    expect(stream.frames.map((f) => f.event)).toEqual(["state", "state", "event"]);
    stream.close();
  });
});
