import request from "supertest";
import {
  type Envelope,
  type LiveGap,
  type LogGap,
  type LogPage,
  type LogQuery,
  MemoryRunSource,
  type MemoryRunSourceOptions,
  type RunState,
  type SseRouterOptions,
  sseRouter,
} from "../../lib/index";
import { serve, type TestServer } from "../helpers/server";
import { SseStream } from "../helpers/sse";

/** A MemoryRunSource that counts what the router asks of it, and can say live delivery lost continuity. */
class CountingSource extends MemoryRunSource {
  logReads = 0;
  runReads = 0;
  #gaps = new Set<(gap: LiveGap) => void>();

  override readLog(query: LogQuery): LogPage<RunState, never> | LogGap | undefined {
    this.logReads++;
    return super.readLog(query) as LogPage<RunState, never> | LogGap | undefined;
  }

  override getRun(runId: string): RunState | undefined {
    this.runReads++;
    return super.getRun(runId);
  }

  override subscribe(listener: (envelope: Envelope) => void, onGap?: (gap: LiveGap) => void): () => void {
    const unsubscribe = super.subscribe(listener);
    if (onGap !== undefined) this.#gaps.add(onGap);
    return () => {
      unsubscribe();
      if (onGap !== undefined) this.#gaps.delete(onGap);
    };
  }

  /** Tells subscribers that live delivery of `runId` (every run when absent) lost continuity. */
  gap(runId?: string): void {
    for (const onGap of this.#gaps) onGap({ reason: "trimmed", message: "test gap", runId });
  }
}

function ids(frames: readonly { id?: string | undefined }[]): Array<string | undefined> {
  return frames.map((frame) => frame.id);
}

describe("resumes served from the router's memory of recent frames (resumeCacheBytes)", () => {
  const closing: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const close of closing.splice(0).reverse()) await close();
  });

  async function setUp(
    sourceOptions: MemoryRunSourceOptions = {},
    options: SseRouterOptions = {},
  ): Promise<{ source: CountingSource; t: TestServer }> {
    const source = new CountingSource({ maxRunLogSize: 1_000, ...sourceOptions });
    const t = await serve(source, { heartbeatMs: 60_000, ...options });
    closing.push(() => t.close());
    return { source, t };
  }

  /** Opens a run's stream; closed after the test. */
  async function open(t: TestServer, runId: string, headers: Record<string, string> = {}): Promise<SseStream> {
    const stream = await SseStream.open(`${t.url}/api/runs/${runId}/stream`, headers);
    closing.push(async () => stream.close());
    return stream;
  }

  it("many resumes from ids the router received live read no log, and each gets exactly what it missed, then live frames", async () => {
    const { source, t } = await setUp();
    source.createRun({ id: "r" });
    source.createRun({ id: "other" });
    const seen = source.recordEvent("r", { type: "unit.started", n: 0 }).id as string;
    const missed: Envelope[] = [];
    for (let n = 1; n <= 300; n++) {
      missed.push(source.recordEvent("r", { type: "unit.progress", n }));
      source.recordEvent("other", { type: "unit.progress", n });
    }
    source.logReads = 0;
    source.runReads = 0;
    const streams = await Promise.all(Array.from({ length: 20 }, () => open(t, "r", { "Last-Event-ID": seen })));
    await Promise.all(streams.map((stream) => stream.frameCount(missed.length)));
    const live = source.recordEvent("r", { type: "unit.completed", n: 301 });
    for (const stream of streams) {
      await stream.frameCount(missed.length + 1);
      expect(ids(stream.frames)).toEqual([...ids(missed), live.id]);
      expect(stream.of("resync")).toHaveLength(0);
    }
    expect(source.logReads).toBe(0);
    expect(source.runReads).toBe(0);
    expect(t.router.stats().streamStarts.replayed).toBe(20);
    expect(t.router.stats().resumeCache).toMatchObject({ hits: 20, frames: 604 });
  });

  it("serves exactly a resume whose id the run's log already trimmed but the router still holds", async () => {
    const { source, t } = await setUp({ maxRunLogSize: 5 });
    source.createRun({ id: "r" });
    const old = source.lastId as string;
    const missed = Array.from({ length: 20 }, (_, n) => source.recordEvent("r", { type: "unit.progress", n }));
    expect(source.readLog({ runId: "r", after: old, limit: 10 })).toEqual({ gap: "trimmed" });
    const stream = await open(t, "r", { "Last-Event-ID": old });
    await stream.frameCount(missed.length);
    expect(ids(stream.frames)).toEqual(ids(missed));
    expect(stream.of("resync")).toHaveLength(0);
  });

  it("with resumeCacheBytes 0 the same resume reads the log (and, trimmed, gets resync)", async () => {
    const { source, t } = await setUp({ maxRunLogSize: 5 }, { resumeCacheBytes: 0 });
    source.createRun({ id: "r" });
    const old = source.lastId as string;
    for (let n = 0; n < 20; n++) source.recordEvent("r", { type: "unit.progress", n });
    source.logReads = 0;
    const stream = await open(t, "r", { "Last-Event-ID": old });
    await stream.frameCount(2);
    expect(stream.frames[0]).toMatchObject({ event: "resync", json: { reason: "trimmed", runId: "r" } });
    expect(source.logReads).toBeGreaterThan(0);
  });

  it("an id from before the router joined, or pushed out of its budget, is read from the log, exactly", async () => {
    const source = new CountingSource({ maxRunLogSize: 1_000 });
    source.createRun({ id: "r" });
    const early = source.recordEvent("r", { type: "unit.started", n: 0 }).id as string;
    const before = Array.from({ length: 5 }, (_, n) => source.recordEvent("r", { type: "unit.progress", n }));
    // A budget of about two frames: the router holds only the newest.
    const t = await serve(source, { heartbeatMs: 60_000, resumeCacheBytes: 200 });
    closing.push(() => t.close());
    const after = Array.from({ length: 10 }, (_, n) => source.recordEvent("r", { type: "unit.progress", n: 5 + n }));
    const cases: Array<[string, Envelope[]]> = [
      [early, [...before, ...after]],
      [after[2]?.id as string, after.slice(3)],
    ];
    for (const [from, expected] of cases) {
      source.logReads = 0;
      const stream = await open(t, "r", { "Last-Event-ID": from });
      await stream.frameCount(expected.length);
      expect(ids(stream.frames)).toEqual(ids(expected));
      expect(source.logReads).toBeGreaterThan(0);
    }
  });

  it("global streams, filtered or not, resume from memory too: exactly the frames of their view, no log read", async () => {
    const { source, t } = await setUp();
    source.createRun({ id: "web1", tags: ["team:web"] });
    source.createRun({ id: "data1", tags: ["team:data"] });
    const seen = source.lastId as string;
    const recorded: Envelope[] = [];
    for (let n = 0; n < 150; n++) {
      recorded.push(source.recordEvent(n % 3 === 0 ? "data1" : "web1", { type: "unit.progress", n }));
    }
    recorded.push(source.completeRun("web1", { status: "completed" }));
    source.logReads = 0;
    const all = await SseStream.open(`${t.url}/api/stream`, { "Last-Event-ID": seen });
    const web = await SseStream.open(`${t.url}/api/stream?tags=team:web`, { "Last-Event-ID": seen });
    closing.push(async () => {
      all.close();
      web.close();
    });
    const ofWeb = recorded.filter((e) => e.runId === "web1");
    await all.frameCount(recorded.length);
    await web.frameCount(ofWeb.length);
    const live = source.recordEvent("data1", { type: "unit.completed" });
    await all.frameCount(recorded.length + 1);
    expect(ids(all.frames)).toEqual([...ids(recorded), live.id]);
    expect(ids(web.frames)).toEqual(ids(ofWeb));
    expect(web.raw).not.toContain("data1");
    expect(source.logReads).toBe(0);
    expect(t.router.stats().resumeCache.hits).toBe(2);
  });

  it("after a live gap of one run, global resumes from before it read the log", async () => {
    const { source, t } = await setUp();
    source.createRun({ id: "a" });
    source.createRun({ id: "b" });
    const seen = source.lastId as string;
    const missed = [
      source.recordEvent("a", { type: "unit.progress" }),
      source.recordEvent("b", { type: "unit.progress" }),
    ];
    source.gap("a");
    source.logReads = 0;
    const stream = await open(t, "b", {});
    await stream.frameCount(1);
    const global = await SseStream.open(`${t.url}/api/stream`, { "Last-Event-ID": seen });
    closing.push(async () => global.close());
    await global.frameCount(2);
    expect(ids(global.frames)).toEqual(ids(missed));
    expect(source.logReads).toBeGreaterThan(0);
  });

  it("a live gap drops what the router holds of the run: the next resume reads the log", async () => {
    const { source, t } = await setUp();
    source.createRun({ id: "r" });
    const seen = source.lastId as string;
    source.recordEvent("r", { type: "unit.progress", n: 1 });
    source.gap("r");
    source.logReads = 0;
    const stream = await open(t, "r", { "Last-Event-ID": seen });
    await stream.frameCount(1);
    expect(stream.frames[0]?.json).toMatchObject({ type: "unit.progress", n: 1 });
    expect(source.logReads).toBeGreaterThan(0);
  });

  it("a finished run: resuming at its complete is 204, before it gets the rest then the end; once forgotten, 404", async () => {
    const { source, t } = await setUp({ maxFinishedRuns: 1 });
    source.createRun({ id: "done" });
    const mid = source.recordEvent("done", { type: "unit.started" }).id as string;
    const last = source.recordEvent("done", { type: "unit.completed" });
    const complete = source.completeRun("done", { status: "completed" });
    source.logReads = 0;
    const atEnd = await request(t.app)
      .get("/api/runs/done/stream")
      .set("Last-Event-ID", complete.id as string);
    expect(atEnd.status).toBe(204);
    const rest = await open(t, "done", { "Last-Event-ID": mid });
    await rest.end();
    expect(ids(rest.frames)).toEqual([last.id, complete.id]);
    expect(source.logReads).toBe(0);
    // Another run finishing pushes "done" out of the source: gone whole, whatever the router holds.
    source.createRun({ id: "next" });
    source.completeRun("next", { status: "completed" });
    expect(source.getRun("done")).toBeUndefined();
    for (const id of [mid, complete.id as string]) {
      const gone = await request(t.app).get("/api/runs/done/stream").set("Last-Event-ID", id);
      expect(gone.status).toBe(404);
      expect(gone.body).toEqual({ error: { code: "run_not_found", message: "run done does not exist" } });
    }
  });

  it("an id that only compares equal to one held (not the same text) is the source's to judge: unknown_id", async () => {
    const { source, t } = await setUp();
    source.createRun({ id: "r" });
    const seen = source.recordEvent("r", { type: "unit.started" }).id as string;
    source.recordEvent("r", { type: "unit.progress" });
    const stream = await open(t, "r", { "Last-Event-ID": `0${seen}` });
    await stream.frameCount(2);
    expect(stream.frames[0]).toMatchObject({ event: "resync", json: { reason: "unknown_id", runId: "r" } });
  });

  it.each([-1, 1.5, Number.NaN, "1" as unknown as number])(
    "refuses resumeCacheBytes %p with invalid_option",
    (value) => {
      expect(() => sseRouter(new MemoryRunSource(), { resumeCacheBytes: value })).toThrow(
        expect.objectContaining({ code: "invalid_option" }),
      );
    },
  );
});
