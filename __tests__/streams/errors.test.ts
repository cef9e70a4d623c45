import request from "supertest";
import { type ErrorContext, MemoryRunSource, RuncastError, sseRouter } from "../../lib/index";
import { serve, type TestServer } from "../helpers/server";
import { BareSource } from "../helpers/sources";
import { SseStream } from "../helpers/sse";

describe("bad input gets a clear error and disturbs nothing", () => {
  let source: MemoryRunSource;
  let t: TestServer;
  const errors: Array<{ error: unknown; context: ErrorContext }> = [];

  beforeEach(async () => {
    errors.length = 0;
    source = new MemoryRunSource();
    t = await serve(source, { onError: (error, context) => errors.push({ error, context }) });
  });
  afterEach(() => t.close());

  it("answers an unknown run with 404 run_not_found as JSON", async () => {
    const res = await request(t.url).get("/api/runs/nope/stream").expect(404);
    expect(res.headers["content-type"]).toMatch(/^application\/json/);
    expect(res.body).toEqual({ error: { code: "run_not_found", message: expect.stringContaining("nope") } });
    expect(t.router.clientCount()).toBe(0);
  });

  it.each([
    ["a space", "bad%20id"],
    ["a slash", "a%2Fb"],
    ["a newline", "a%0Ab"],
    ["broken percent-encoding", "%E0%A4%A"],
    ["129 characters", "x".repeat(129)],
  ])("answers a run id with %s with 400 invalid_run_id", async (_what, id) => {
    const res = await request(t.url).get(`/api/runs/${id}/stream`).expect(400);
    expect(res.body.error.code).toBe("invalid_run_id");
  });

  it("answers an invalid types filter with 400 invalid_query", async () => {
    source.createRun({ id: "r" });
    const res = await request(t.url).get("/api/runs/r/stream?types=unit.started,Bad%0AType").expect(400);
    expect(res.body.error.code).toBe("invalid_query");
  });

  it("leaves other paths and methods to the rest of the app", async () => {
    await request(t.url).get("/api/runs/r/other").expect(404);
    await request(t.url).post("/api/stream").expect(404);
  });

  it("drops an invalid envelope from the source, reports it, and keeps serving", async () => {
    const bare = new BareSource();
    bare.runs.set("r", { id: "r", status: "running", completed_units: 0 });
    const seen: ErrorContext[] = [];
    const b = await serve(bare, { onError: (_e, context) => seen.push(context) });
    try {
      const stream = await SseStream.open(`${b.url}/api/runs/r/stream`);
      await stream.frameCount(1);
      const ts = new Date().toISOString();
      const junk = [
        null,
        "text",
        { type: "event", runId: "r", data: { type: "unit.started" } },
        { type: "event", runId: "r", data: { type: "unit\nstarted", run_id: "r", ts } },
        { type: "event", runId: "r", id: "bad\nid", data: { type: "unit.started", run_id: "r", ts } },
        { type: "state", runId: "r", data: { id: "other", status: "running", completed_units: 0 } },
        { type: "state", runId: "r", data: { id: "r", status: "completed", completed_units: 0 } },
        { type: "complete", runId: "r", data: { id: "r", status: "running", completed_units: 0 } },
        { type: "exploded", runId: "r", data: {} },
      ];
      for (const value of junk) bare.emit(value);
      bare.emit({ type: "event", runId: "r", id: "7", data: { type: "unit.started", run_id: "r", ts } });
      await stream.frameCount(2);
      expect(stream.frames.map((f) => f.event)).toEqual(["state", "event"]);
      expect(stream.frames[1]?.id).toBe("7");
      expect(seen).toHaveLength(junk.length);
      expect(seen.every((c) => c.phase === "envelope")).toBe(true);
      expect(b.router.stats().invalidEnvelopes).toBe(junk.length);
      stream.close();
    } finally {
      await b.close();
    }
  });

  it("answers 500 internal_error when the source throws, telling onError the cause", async () => {
    const bare = new BareSource();
    bare.getRunError = new Error("database down");
    const seen: unknown[] = [];
    const b = await serve(bare, { onError: (e) => seen.push(e) });
    try {
      const res = await request(b.url).get("/api/runs/r/stream").expect(500);
      expect(res.body.error.code).toBe("internal_error");
      expect(JSON.stringify(res.body)).not.toContain("database down");
      expect(seen).toEqual([bare.getRunError]);
      expect(b.router.clientCount()).toBe(0);
    } finally {
      await b.close();
    }
  });

  it("works with a minimal adapter: id-less snapshot frames, then live frames", async () => {
    const bare = new BareSource();
    bare.runs.set("r", { id: "r", status: "running", completed_units: 0 });
    const b = await serve(bare);
    try {
      const stream = await SseStream.open(`${b.url}/api/runs/r/stream`);
      await stream.frameCount(1);
      expect(stream.frames[0]?.id).toBeUndefined();
      bare.emit({ type: "complete", runId: "r", id: "9", data: { id: "r", status: "completed", completed_units: 1 } });
      await stream.end();
      expect(stream.frames.map((f) => f.event)).toEqual(["state", "complete"]);
    } finally {
      await b.close();
    }
  });

  it("rejects invalid options when the router is created", () => {
    for (const bad of [
      { heartbeatMs: 0 },
      // Longer than a Node timer can wait: it would fire at once, every millisecond.
      { heartbeatMs: 2 ** 31 },
      { retryMs: -1 },
      { maxBufferedBytes: 1.5 },
      { maxClients: 0 },
      { basePath: "api" },
    ]) {
      expect(() => sseRouter(source, bad)).toThrow(RuncastError);
    }
  });
});
