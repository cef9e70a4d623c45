import request from "supertest";
import {
  type Envelope,
  type ErrorContext,
  type LogQuery,
  MemoryRunSource,
  RuncastError,
  type RunEventSource,
  type RunSnapshot,
  type RunState,
  type SseRouterOptions,
  sseRouter,
} from "../../lib/index";
import { eventually, serve, type TestServer } from "../helpers/server";
import { SseStream } from "../helpers/sse";

type Read = "getRun" | "listRuns" | "snapshot" | "replay" | "getCompletion" | "readLog";

/** A promise the test settles itself: the answer of a read that hangs until then. */
class Pending<T> {
  resolve: (value: T) => void = () => {};
  reject: (error: unknown) => void = () => {};
  readonly promise = new Promise<T>((resolve, reject) => {
    this.resolve = resolve;
    this.reject = reject;
  });
}

/** An adapter over a MemoryRunSource whose chosen reads never answer until the test says so. */
class HangingSource implements RunEventSource {
  readonly inner = new MemoryRunSource();
  readonly hung = new Set<Read>();
  readonly pending: Pending<unknown>[] = [];
  /** With `readLog` hung: how many log reads still answer before the rest hang. */
  logReadsAnswered = 0;

  protected answer<T>(read: Read, value: () => T): T | Promise<T> {
    if (!this.hung.has(read)) return value();
    const pending = new Pending<T>();
    this.pending.push(pending as Pending<unknown>);
    return pending.promise;
  }
  getRun(runId: string) {
    return this.answer("getRun", () => this.inner.getRun(runId));
  }
  listRuns() {
    return this.answer("listRuns", (): RunState[] => this.inner.listRuns());
  }
  snapshot(runId?: string) {
    return this.answer("snapshot", (): RunSnapshot | undefined => this.inner.snapshot(runId));
  }
  replay(afterId: string, runId?: string) {
    return this.answer("replay", () => this.inner.replay(afterId, runId));
  }
  getCompletion(runId: string) {
    return this.answer("getCompletion", () => this.inner.getCompletion(runId));
  }
  subscribe(listener: (envelope: Envelope) => void) {
    return this.inner.subscribe(listener);
  }
}

/** The same, with the paged log reads (`readLog`) resumes use when a source has them. */
class HangingLogSource extends HangingSource {
  readLog(query: LogQuery) {
    if (this.logReadsAnswered > 0) {
      this.logReadsAnswered--;
      return this.inner.readLog(query);
    }
    return this.answer("readLog", () => this.inner.readLog(query));
  }
}

const TIMEOUT_MS = 300;

describe("sourceTimeoutMs", () => {
  let source: HangingSource;
  let t: TestServer;
  let errors: { error: unknown; context: ErrorContext }[];
  let authorize: (() => Promise<boolean>) | undefined;

  /** Serves `hanging` (with runs `r`, active, and `done`, finished) behind a fresh router. */
  async function setUp(hanging: HangingSource, more: SseRouterOptions = {}): Promise<void> {
    source = hanging;
    source.inner.createRun({ id: "r" });
    source.inner.createRun({ id: "done" });
    source.inner.completeRun("done", { status: "completed" });
    errors = [];
    authorize = undefined;
    t = await serve(source, {
      heartbeatMs: 60_000,
      sourceTimeoutMs: TIMEOUT_MS,
      retryMs: 2500,
      maxClients: 1,
      authorize: () => authorize?.() ?? true,
      onError: (error, context) => errors.push({ error, context }),
      ...more,
    });
  }

  beforeEach(() => setUp(new HangingSource()));
  afterEach(() => t.close());

  /** Expects the 503 of a timeout, its report, and a free slot afterwards. */
  async function expectTimedOut(path: string, headers: Record<string, string>, phase: string): Promise<void> {
    let req = request(t.url).get(path);
    for (const [name, value] of Object.entries(headers)) req = req.set(name, value);
    const res = await req;
    expect(res.status).toBe(503);
    expect(res.headers["retry-after"]).toBe("3");
    expect(res.body).toEqual({ error: { code: "unavailable", message: expect.any(String) } });
    expect(errors).toHaveLength(1);
    expect(errors[0]?.context.phase).toBe(phase);
    expect(errors[0]?.error).toBeInstanceOf(RuncastError);
    expect(String(errors[0]?.error)).toContain(`within ${TIMEOUT_MS} ms`);
    await eventually(() => t.router.clientCount() === 0, "the timed-out client to leave");
  }

  /** With nothing hung any more, the one maxClients slot serves a real client. */
  async function expectServedAfter(): Promise<void> {
    source.hung.clear();
    const stream = await SseStream.open(`${t.url}/api/runs/r/stream`);
    expect(stream.status).toBe(200);
    await stream.frameCount(1);
    stream.close();
  }

  it.each<[string, Read, string, "resume" | "fresh", boolean]>([
    ["a run's snapshot", "snapshot", "/api/runs/r/stream", "fresh", false],
    ["a global snapshot", "snapshot", "/api/stream", "fresh", false],
    ["getRun on a resume", "getRun", "/api/runs/r/stream", "resume", false],
    ["replay on a resume", "replay", "/api/stream", "resume", false],
    ["getCompletion of a finished run", "getCompletion", "/api/runs/done/stream", "fresh", false],
    ["readLog on a resume", "readLog", "/api/runs/r/stream", "resume", true],
    ["readLog on a global resume", "readLog", "/api/stream", "resume", true],
  ])(
    "%s that never answers: 503 unavailable with Retry-After, reported, and the slot freed",
    async (_what, read, path, how, paged) => {
      if (paged) {
        await t.close();
        await setUp(new HangingLogSource());
      }
      source.hung.add(read);
      const headers: Record<string, string> =
        how === "resume" ? { "Last-Event-ID": source.inner.lastId as string } : {};
      await expectTimedOut(path, headers, "source");
      expect(errors[0]?.context.runId).toBe(path.includes("/runs/") ? path.split("/")[3] : undefined);
      await expectServedAfter();
    },
  );

  it("a log page that never answers while a resume is written ends that stream, reported; the client can resume", async () => {
    await t.close();
    // The router's memory of recent frames off: every page is the source's to read.
    await setUp(new HangingLogSource(), { resumeCacheBytes: 0 });
    for (let n = 0; n < 60; n++) source.inner.recordEvent("r", { type: "unit.progress", n });
    const first = source.inner.readLog({ runId: "r", limit: 1 });
    const after = first !== undefined && "envelopes" in first ? (first.envelopes[0]?.id as string) : "";
    // The first page (read before the head) answers; the next one, read while the stream is written, hangs.
    source.hung.add("readLog");
    source.logReadsAnswered = 1;
    const resuming = await SseStream.open(`${t.url}/api/runs/r/stream`, { "Last-Event-ID": after });
    expect(resuming.status).toBe(200);
    await resuming.end();
    expect(resuming.of("event").length).toBeGreaterThan(0);
    expect(resuming.of("event").length).toBeLessThan(60);
    expect(errors).toHaveLength(1);
    expect(errors[0]?.context).toMatchObject({ phase: "replay", runId: "r" });
    expect(String(errors[0]?.error)).toContain(`within ${TIMEOUT_MS} ms`);
    await eventually(() => t.router.clientCount() === 0, "the stalled client to leave");
    source.hung.clear();
    const resumed = await SseStream.open(`${t.url}/api/runs/r/stream`, {
      "Last-Event-ID": resuming.frames.at(-1)?.id as string,
    });
    await resumed.until(() => resumed.of("event").length + resuming.of("event").length === 59, "the rest of the log");
    resumed.close();
  });

  it("a source that answers after the timeout changes nothing, and a late failure is no unhandled rejection", async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown): void => {
      unhandled.push(reason);
    };
    process.on("unhandledRejection", onUnhandled);
    try {
      source.hung.add("snapshot");
      source.hung.add("getRun");
      expect((await request(t.url).get("/api/runs/r/stream")).status).toBe(503);
      const resume = request(t.url)
        .get("/api/runs/r/stream")
        .set("Last-Event-ID", source.inner.lastId as string);
      expect((await resume).status).toBe(503);
      expect(errors.map((e) => e.context.phase)).toEqual(["source", "source"]);
      const [late, failing] = source.pending;
      late?.resolve(source.inner.snapshot("r"));
      failing?.reject(new Error("too late"));
      await expectServedAfter();
      expect(unhandled).toEqual([]);
      expect(errors).toHaveLength(2);
      await eventually(() => t.router.clientCount() === 0, "every client to leave");
    } finally {
      process.off("unhandledRejection", onUnhandled);
    }
  });

  it("a hung authorize answers 503 unavailable with Retry-After, reported with phase authorize", async () => {
    authorize = () => new Promise<boolean>(() => {});
    await expectTimedOut("/api/stream", {}, "authorize");
    authorize = undefined;
    await expectServedAfter();
  });

  it("is checked when the router is created: a positive integer up to 2^31-1, or Infinity", () => {
    for (const sourceTimeoutMs of [0, -1, 1.5, Number.NaN, 2 ** 31, "10" as unknown as number]) {
      expect(() => sseRouter(source, { sourceTimeoutMs })).toThrow(expect.objectContaining({ code: "invalid_option" }));
    }
    for (const sourceTimeoutMs of [1, 2 ** 31 - 1, Number.POSITIVE_INFINITY]) {
      expect(() => sseRouter(source, { sourceTimeoutMs }).close()).not.toThrow();
    }
  });
});
