import {
  type Envelope,
  type ErrorContext,
  MemoryRunSource,
  type RunEventSource,
  type RunSnapshot,
  type RunState,
} from "../../lib/index";
import { serve, type TestServer, within } from "../helpers/server";
import { SseStream } from "../helpers/sse";

/** A MemoryRunSource whose snapshot cursor or completion an adapter's bug can replace. */
class FaultySource implements RunEventSource {
  cursor: unknown;
  completion: unknown;
  constructor(readonly inner: MemoryRunSource) {}
  getRun(runId: string): RunState | undefined {
    return this.inner.getRun(runId);
  }
  listRuns(): RunState[] {
    return this.inner.listRuns();
  }
  subscribe(listener: (envelope: Envelope) => void): () => void {
    return this.inner.subscribe(listener);
  }
  snapshot(runId?: string): RunSnapshot | undefined {
    const snapshot = this.inner.snapshot(runId);
    return snapshot === undefined ? undefined : { ...snapshot, cursor: this.cursor as string };
  }
  getCompletion(runId: string): Envelope | undefined {
    return (this.completion ?? this.inner.getCompletion(runId)) as Envelope | undefined;
  }
}

describe("how a stream starts, against a faulty adapter and hostile ids", () => {
  let inner: MemoryRunSource;
  let source: FaultySource;
  let t: TestServer;
  let errors: Array<{ error: unknown; context: ErrorContext }>;

  beforeEach(async () => {
    inner = new MemoryRunSource();
    source = new FaultySource(inner);
    errors = [];
    t = await serve(source, { heartbeatMs: 60_000, onError: (error, context) => errors.push({ error, context }) });
  });
  afterEach(() => t.close());

  it.each([
    ["a line feed", "1-1\nevent: complete\ndata: {}"],
    ["a lone carriage return", "1-1\revent: complete"],
    ["an object", { id: "1-1" }],
    ["a megabyte", "9".repeat(1024 * 1024)],
  ])(
    "a snapshot cursor with %s never reaches the wire: reported, the snapshot goes out without an id",
    async (_, cursor) => {
      source.cursor = cursor;
      inner.createRun({ id: "r", total_units: 2 });
      const stream = await SseStream.open(`${t.url}/api/runs/r/stream`);
      await stream.frameCount(1);
      const live = inner.recordEvent("r", { type: "unit.started" });
      await stream.frameCount(2);
      expect(stream.frames.map((f) => [f.event, f.id])).toEqual([
        ["state", undefined],
        ["event", live.id],
      ]);
      expect(stream.raw).not.toContain("object Object");
      expect(stream.raw.length).toBeLessThan(10_000);
      expect(errors.some(({ context }) => context.phase === "snapshot")).toBe(true);
      stream.close();
    },
  );

  it("a forged cursor is not used as the id of a synthesized complete either", async () => {
    source.cursor = "1-1\nevent: forged";
    source.completion = undefined;
    const bare: RunEventSource = {
      getRun: (id) => inner.getRun(id),
      listRuns: () => inner.listRuns(),
      subscribe: (l) => inner.subscribe(l),
      snapshot: (id) => source.snapshot(id),
    };
    const s = await serve(bare, { heartbeatMs: 60_000, onError: () => {} });
    try {
      inner.createRun({ id: "r" });
      inner.completeRun("r", { status: "completed" });
      const stream = await SseStream.open(`${s.url}/api/runs/r/stream`);
      await stream.end();
      expect(stream.frames.map((f) => [f.event, f.id])).toEqual([
        ["state", undefined],
        ["complete", undefined],
      ]);
      expect(stream.raw).not.toContain("forged");
    } finally {
      await s.close();
    }
  });

  it("a finished run whose getCompletion gives an invalid envelope still ends: a complete made from its state", async () => {
    inner.createRun({ id: "r" });
    inner.completeRun("r", { status: "failed", completed_units: 0 });
    for (const bad of [
      { type: "complete", runId: "r", id: "1-1", data: { id: "r", status: "running" } },
      { type: "state", runId: "r", id: "1-1", data: { id: "r", status: "pending", completed_units: 0 } },
      { nonsense: true },
    ]) {
      source.completion = bad;
      errors.length = 0;
      const stream = await within(
        SseStream.open(`${t.url}/api/runs/r/stream`).then(async (s) => {
          await s.end();
          return s;
        }),
        "the stream of a finished run to end",
      );
      expect(stream.frames.map((f) => f.event)).toEqual(["state", "complete"]);
      expect(stream.frames[1]?.json).toMatchObject({ id: "r", status: "failed" });
      expect(errors.length).toBeGreaterThan(0);
    }
  });

  it("a non-canonical spelling of a caught-up id is unknown (resync), never a cursor that skips live events", async () => {
    inner.createRun({ id: "r" });
    for (let i = 0; i < 10; i++) inner.recordEvent("r", { type: "unit.progress", n: i });
    const [epoch, seq] = (inner.lastId as string).split("-") as [string, string];
    for (const spelling of [
      `${epoch}-1e1`,
      `${epoch}-0${seq}`,
      `${epoch}-${seq}.0`,
      `0${epoch}-${seq}`,
      `${epoch}-+${seq}`,
    ]) {
      const stream = await SseStream.open(`${t.url}/api/runs/r/stream`, { "Last-Event-ID": spelling });
      await stream.frameCount(2);
      const live = [...Array(15)].map((_, n) => inner.recordEvent("r", { type: "unit.started", n }));
      await stream.frameCount(17);
      expect(stream.frames[0]).toMatchObject({ event: "resync", json: { reason: "unknown_id" } });
      expect(stream.frames.slice(2).map((f) => f.id)).toEqual(live.map((e) => e.id));
      stream.close();
    }
  });
});
