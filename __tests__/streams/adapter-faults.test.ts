import { type Envelope, type ErrorContext, MemoryRunSource, RuncastError } from "../../lib/index";
import { eventually, serve, type TestServer } from "../helpers/server";
import { FaultySource } from "../helpers/sources";
import { SseStream } from "../helpers/sse";

const ts = () => new Date().toISOString();

/** Values JSON cannot carry, each inside an otherwise valid event of run `r`. */
function poisonedEvents(): Record<string, unknown> {
  const cyclic: Record<string, unknown> = { a: 1 };
  cyclic.self = cyclic;
  let reads = 0;
  const event = (extra: Record<string, unknown>) => ({
    type: "event",
    runId: "r",
    data: { type: "unit.started", run_id: "r", ts: ts(), ...extra },
  });
  return {
    bigint: event({ n: 5n }),
    cycle: event({ meta: cyclic }),
    "throwing toJSON": event({
      when: {
        toJSON() {
          throw new Error("no date here");
        },
      },
    }),
    // Passes validation (first call), then throws while the frame is rendered (second call).
    "toJSON that throws the second time": event({
      later: {
        toJSON() {
          reads++;
          if (reads > 1) throw new Error("changed its mind");
          return "fine";
        },
      },
    }),
  };
}

describe("faults in adapter code", () => {
  let source: FaultySource;
  let t: TestServer;
  let errors: { error: unknown; context: ErrorContext }[];
  const streams: SseStream[] = [];

  async function open(path: string): Promise<SseStream> {
    const stream = await SseStream.open(`${t.url}${path}`);
    streams.push(stream);
    await stream.frameCount(1);
    return stream;
  }

  beforeEach(async () => {
    source = new FaultySource();
    source.inner.createRun({ id: "r" });
    errors = [];
    t = await serve(source, { heartbeatMs: 60_000, onError: (error, context) => errors.push({ error, context }) });
  });
  afterEach(async () => {
    for (const stream of streams.splice(0)) stream.close();
    await t.close();
  });

  it("a compareIds that throws while frames fan out disconnects only the clients it failed for; the others keep receiving", async () => {
    const settled = await open("/api/runs/r/stream");
    const filtered = await open("/api/runs/r/stream?types=unit.started,unit.finished");
    const global = await open("/api/stream");
    source.inner.recordEvent("r", { type: "unit.started" });
    await Promise.all([settled.frameCount(2), filtered.frameCount(2), global.frameCount(2)]);
    // Fresh clients still compare live ids with their snapshot's cursor: that is where compareIds runs.
    const fresh = await open("/api/runs/r/stream");
    const freshGlobal = await open("/api/stream");

    source.emit({ type: "event", runId: "r", id: "x1", data: { type: "unit.started", run_id: "r", ts: ts() } });
    await Promise.all([fresh.end(), freshGlobal.end()]);
    source.inner.recordEvent("r", { type: "unit.finished" });
    for (const stream of [settled, filtered, global]) {
      await stream.until(() => stream.of("event").length === 3, "the foreign-id event and the next one");
      expect(stream.of("event").map((f) => f.id)).toEqual([expect.any(String), "x1", expect.any(String)]);
    }
    await eventually(() => t.router.clientCount() === 3, "the two failed clients to leave");
    const delivery = errors.filter((e) => e.context.phase === "delivery");
    expect(delivery).toHaveLength(2);
    expect(delivery.map((e) => e.context.runId).sort()).toEqual(["r", undefined]);
    expect(String(delivery[0]?.error)).toContain("cannot parse envelope id x1");
  });

  it("a compareIds that throws while a client starts drops that client only, reported as a delivery fault", async () => {
    const settled = await open("/api/runs/r/stream");
    source.inner.recordEvent("r", { type: "unit.started" });
    await settled.frameCount(2);
    let release: () => void = () => {};
    source.snapshotGate = new Promise((resolve) => {
      release = resolve;
    });
    const opening = SseStream.open(`${t.url}/api/runs/r/stream`);
    await eventually(() => t.router.clientCount("r") === 2, "the second client to be connecting");
    // Queued for the connecting client, compared with its snapshot's cursor once that is read.
    source.emit({ type: "event", runId: "r", id: "x1", data: { type: "unit.started", run_id: "r", ts: ts() } });
    await settled.frameCount(3);
    release();
    const starting = await opening;
    streams.push(starting);
    await starting.end();
    expect(starting.of("event")).toEqual([]);
    expect(errors).toEqual([
      {
        error: expect.objectContaining({ message: "cannot parse envelope id x1" }),
        context: { phase: "delivery", runId: "r" },
      },
    ]);
    await eventually(() => t.router.clientCount() === 1, "the failed client to leave");
    source.inner.recordEvent("r", { type: "unit.finished" });
    await settled.frameCount(4);
  });

  it("an envelope whose data cannot be serialized is reported, counted and skipped, without throwing into the source", async () => {
    const run = await open("/api/runs/r/stream");
    const global = await open("/api/stream");
    const poisoned = poisonedEvents();
    for (const envelope of Object.values(poisoned)) {
      expect(() => source.emit(envelope)).not.toThrow();
      expect(errors.at(-1)).toMatchObject({
        context: { phase: "envelope", runId: "r" },
        error: expect.objectContaining({ name: "RuncastError", code: "invalid_envelope" }),
      });
      expect(errors.at(-1)?.error).toBeInstanceOf(RuncastError);
    }
    expect(errors).toHaveLength(Object.keys(poisoned).length);
    expect(t.router.stats().invalidEnvelopes).toBe(Object.keys(poisoned).length);
    source.inner.recordEvent("r", { type: "unit.finished" });
    for (const stream of [run, global]) {
      await stream.until(() => stream.of("event").length === 1, "the next valid event");
      expect(stream.of("event")[0]?.json.type).toBe("unit.finished");
    }
  });

  it("broadcast refuses data JSON cannot carry with invalid_envelope, and serves on", async () => {
    const run = await open("/api/runs/r/stream");
    for (const envelope of Object.values(poisonedEvents())) {
      expect(() => t.router.broadcast(envelope as never)).toThrow(
        expect.objectContaining({ name: "RuncastError", code: "invalid_envelope" }),
      );
      expect(() => t.router.broadcastAll(envelope as never)).toThrow(
        expect.objectContaining({ code: "invalid_envelope" }),
      );
    }
    t.router.broadcast({ type: "event", runId: "r", data: { type: "unit.finished", run_id: "r", ts: ts() } });
    await run.frameCount(2);
    expect(run.frames[1]?.json.type).toBe("unit.finished");
  });

  it("a run state JSON cannot carry is left out of the global snapshot and reported; other runs stream as usual", async () => {
    source.inner.createRun({ id: "good" });
    source.states.set("bad", { id: "bad", status: "running", completed_units: 0, budget: 10n });
    for (let i = 0; i < 2; i++) {
      const global = await open("/api/stream");
      expect(global.status).toBe(200);
      await global.until(() => global.of("state").length === 2, "the valid runs' states");
      expect(global.of("state").map((f) => f.json.id)).toEqual(["r", "good"]);
    }
    expect(errors.filter((e) => e.context.phase === "snapshot" && e.context.runId === undefined)).toHaveLength(2);
    expect(String(errors[0]?.error)).toContain("budget");
    const good = await open("/api/runs/good/stream");
    expect(good.of("state")[0]?.json.id).toBe("good");
  });
});

describe("a subclass of MemoryRunSource", () => {
  /** Hands its subscribers whatever `inject` is given, beside what it records. */
  class Tampering extends MemoryRunSource {
    readonly #subscribers = new Set<(envelope: Envelope) => void>();
    override subscribe(listener: (envelope: Envelope) => void): () => void {
      this.#subscribers.add(listener);
      const unsubscribe = super.subscribe(listener);
      return () => {
        this.#subscribers.delete(listener);
        unsubscribe();
      };
    }
    inject(envelope: unknown): void {
      for (const listener of this.#subscribers) listener(envelope as Envelope);
    }
  }

  /** A plain MemoryRunSource whose `subscribe` was replaced on the instance to do the same. */
  function patched(): Tampering {
    const source = new MemoryRunSource() as MemoryRunSource & { inject(envelope: unknown): void };
    const subscribers = new Set<(envelope: Envelope) => void>();
    const subscribe = source.subscribe.bind(source);
    source.subscribe = (listener) => {
      subscribers.add(listener);
      return subscribe(listener);
    };
    source.inject = (envelope) => {
      for (const listener of subscribers) listener(envelope as Envelope);
    };
    return source as unknown as Tampering;
  }

  it.each([
    ["a subclass", () => new Tampering()],
    ["an instance with a method replaced", patched],
  ])(
    "%s is validated like any adapter: only MemoryRunSource as constructed is trusted to have checked its envelopes",
    async (_, make) => {
      const source = make();
      source.createRun({ id: "r" });
      const t = await serve(source, { heartbeatMs: 60_000 });
      const stream = await SseStream.open(`${t.url}/api/runs/r/stream`);
      try {
        await stream.frameCount(1);
        source.inject({ type: "event", runId: "r", data: { type: "NOT A TYPE", run_id: "r", ts: ts() } });
        source.recordEvent("r", { type: "unit.started" });
        await stream.until(() => stream.of("event").length === 1, "the recorded event");
        expect(stream.of("event").map((frame) => frame.json.type)).toEqual(["unit.started"]);
        expect(t.router.stats().invalidEnvelopes).toBe(1);
      } finally {
        stream.close();
        await t.close();
      }
    },
  );
});
