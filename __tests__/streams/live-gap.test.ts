import { type ErrorContext, type LiveGap, MemoryRunSource } from "../../lib/index";
import type { Envelope } from "../../lib/schema";
import { breakResEnd, serve, type TestServer } from "../helpers/server";
import { SseStream } from "../helpers/sse";

/** MemoryRunSource, plus a way to say live delivery lost continuity, as a networked source would. */
class GappySource extends MemoryRunSource {
  readonly gaps = new Set<(gap: LiveGap) => void>();

  override subscribe(listener: (envelope: Envelope) => void, onGap?: (gap: LiveGap) => void): () => void {
    const stop = super.subscribe(listener);
    if (onGap !== undefined) this.gaps.add(onGap);
    return () => {
      stop();
      if (onGap !== undefined) this.gaps.delete(onGap);
    };
  }

  gap(gap: LiveGap): void {
    for (const onGap of this.gaps) onGap(gap);
  }
}

describe("a source's live gap", () => {
  let source: GappySource;
  let t: TestServer;
  const errors: [string, ErrorContext][] = [];
  const streams: SseStream[] = [];

  const open = async (path: string, headers: Record<string, string> = {}): Promise<SseStream> => {
    const stream = await SseStream.open(`${t.url}${path}`, headers);
    streams.push(stream);
    await stream.frameCount(1);
    return stream;
  };

  beforeEach(async () => {
    errors.length = 0;
    source = new GappySource();
    source.createRun({ id: "a" });
    source.createRun({ id: "b" });
    t = await serve(source, {
      onError: (error, context) => errors.push([error instanceof Error ? error.message : String(error), context]),
    });
  });

  afterEach(async () => {
    for (const stream of streams.splice(0)) stream.close();
    await t.close();
  });

  it("for every run ends every stream, reported once; the clients resume from their last id", async () => {
    const [runA, runB, global] = [
      await open("/api/runs/a/stream"),
      await open("/api/runs/b/stream"),
      await open("/api/stream"),
    ];
    source.gap({ reason: "history_lost", message: "the store restarted empty" });
    await Promise.all([runA, runB, global].map((stream) => stream.end()));
    expect(errors).toEqual([
      [
        expect.stringMatching(/lost live continuity \(history_lost\): the store restarted empty; ending every stream/),
        { phase: "gap" },
      ],
    ]);
    expect(t.router.clientCount()).toBe(0);

    // A reconnect with the last id gets what was recorded since, then live frames.
    const missed = source.recordEvent("a", { type: "unit.missed" });
    const resumed = await open("/api/runs/a/stream", { "Last-Event-ID": runA.frames.at(-1)?.id as string });
    expect(resumed.frames.map((f) => f.id)).toEqual([missed.id]);
  });

  it("for one run ends that run's streams only", async () => {
    const [runA, runB, global] = [
      await open("/api/runs/a/stream"),
      await open("/api/runs/b/stream"),
      await open("/api/stream"),
    ];
    source.gap({ reason: "trimmed", runId: "a", message: "run a's log was trimmed" });
    await runA.end();
    expect(errors).toEqual([[expect.stringMatching(/ending the streams of run a/), { phase: "gap", runId: "a" }]]);
    const later = source.recordEvent("b", { type: "unit.later" });
    await runB.until(() => runB.frames.some((f) => f.id === later.id), "run b's next event");
    await global.until(() => global.frames.some((f) => f.id === later.id), "the global stream's next event");
    expect(runB.ended || global.ended).toBe(false);
    expect(t.router.clientCount()).toBe(2);
  });

  it("a stream whose res.end throws (a middleware's wrapper) is destroyed and reported; every other stream still ends", async () => {
    const failure = new Error("res.end wrapper failed");
    const own = await serve(
      source,
      { onError: (error, context) => errors.push([error instanceof Error ? error.message : String(error), context]) },
      (app) => app.use(breakResEnd(failure)),
    );
    try {
      const opened = await Promise.all(
        ["/api/runs/a/stream?broken", "/api/runs/a/stream", "/api/runs/b/stream", "/api/stream"].map(async (path) => {
          const stream = await SseStream.open(`${own.url}${path}`);
          streams.push(stream);
          await stream.frameCount(1);
          return stream;
        }),
      );
      source.gap({ reason: "history_lost", message: "the store restarted empty" });
      await Promise.all(opened.map((stream) => stream.end()));
      expect(own.router.clientCount()).toBe(0);
      expect(errors).toContainEqual([failure.message, { phase: "delivery", runId: "a" }]);
    } finally {
      await own.close();
    }
  });
});
