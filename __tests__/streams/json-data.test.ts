import { MemoryRunSource } from "../../lib/index";
import { serve, type TestServer } from "../helpers/server";
import { SseStream } from "../helpers/sse";

describe("values JSON cannot carry, written by the daemon", () => {
  let source: MemoryRunSource;
  let t: TestServer;
  const streams: SseStream[] = [];

  async function open(path: string, headers: Record<string, string> = {}): Promise<SseStream> {
    const stream = await SseStream.open(`${t.url}${path}`, headers);
    streams.push(stream);
    return stream;
  }

  beforeEach(async () => {
    source = new MemoryRunSource();
    t = await serve(source, { heartbeatMs: 60_000 });
  });
  afterEach(async () => {
    for (const stream of streams.splice(0)) stream.close();
    await t.close();
  });

  it("are refused at the writer, and every stream of the run, the global stream and resumes keep working", async () => {
    source.createRun({ id: "r" });
    const run = await open("/api/runs/r/stream");
    const global = await open("/api/stream");
    await Promise.all([run.frameCount(1), global.frameCount(1)]);
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;

    expect(() => source.updateRun("r", { meta: { n: 5n } })).toThrow(
      expect.objectContaining({ name: "RuncastError", code: "invalid_state" }),
    );
    expect(() => source.recordEvent("r", { type: "unit.started", detail: cyclic })).toThrow(
      expect.objectContaining({ code: "invalid_event" }),
    );
    source.recordEvent("r", { type: "unit.finished", detail: { ok: true } });
    for (const stream of [run, global]) {
      await stream.frameCount(2);
      expect(stream.frames.map((f) => f.event)).toEqual(["state", "event"]);
    }

    const fresh = await open("/api/runs/r/stream");
    const freshGlobal = await open("/api/stream");
    const resumed = await open("/api/runs/r/stream", { "Last-Event-ID": run.frames[0]?.id as string });
    for (const stream of [fresh, freshGlobal, resumed]) {
      expect(stream.status).toBe(200);
      await stream.frameCount(1);
    }
    expect(resumed.frames[0]?.json).toMatchObject({ type: "unit.finished", detail: { ok: true } });
  });
});
