import request from "supertest";
import { type Envelope, MemoryRunSource, type RunEventSource, type RunState } from "../../lib/index";
import { browserStream } from "../helpers/browser-stream";
import { eventually, serve, type TestServer } from "../helpers/server";
import { BareSource } from "../helpers/sources";
import { SseStream } from "../helpers/sse";

/** [event, id] of every frame, for comparing a stream with the source's log. */
function shape(frames: readonly { event: string; id: string | undefined }[]): Array<[string, string | undefined]> {
  return frames.map((f) => [f.event, f.id]);
}

function logOf(envelopes: readonly Envelope[], runId: string): Array<[string, string | undefined]> {
  return envelopes.filter((e) => e.runId === runId).map((e) => [e.type, e.id]);
}

describe("run logs: a run's whole history from ?from=start, and the resume outcome on the wire", () => {
  let source: MemoryRunSource;
  let t: TestServer;
  let recorded: Envelope[];

  beforeEach(async () => {
    source = new MemoryRunSource({ historySize: 20, maxRunLogSize: 1_000 });
    recorded = [];
    source.subscribe((e) => recorded.push(e));
    t = await serve(source, { heartbeatMs: 60_000, retryMs: 20 });
  });
  afterEach(() => t.close());

  it("a client joining mid-run with from=start gets every envelope from the first state, in order, once, then live frames", async () => {
    source.createRun({ id: "r", total_units: 3 });
    source.createRun({ id: "other" });
    for (let i = 0; i < 300; i++) {
      source.recordEvent("r", { type: "unit.progress", n: i });
      if (i % 50 === 0) source.updateRun("r", { status: "running", completed_units: i / 50 });
      source.recordEvent("other", { type: "unit.progress", n: i });
    }
    const stream = await SseStream.open(`${t.url}/api/runs/r/stream?from=start`);
    const before = logOf(recorded, "r");
    await stream.frameCount(before.length);
    source.recordEvent("r", { type: "unit.started", unit: "late" });
    source.completeRun("r", { status: "completed", completed_units: 3 });
    await stream.end();
    expect(shape(stream.frames)).toEqual(logOf(recorded, "r"));
    expect(stream.frames[0]?.json).toMatchObject({ id: "r", status: "pending" });
    expect(stream.of("resync")).toHaveLength(0);
  });

  it("a finished run's from=start stream is its whole log, ending with complete, then the response ends", async () => {
    source.createRun({ id: "done" });
    for (let i = 0; i < 10; i++) source.recordEvent("done", { type: "unit.completed", unit: `u${i}` });
    source.completeRun("done", { status: "failed", completed_units: 9 });
    const stream = await SseStream.open(`${t.url}/api/runs/done/stream?from=start`);
    await stream.end();
    expect(stream.status).toBe(200);
    expect(shape(stream.frames)).toEqual(logOf(recorded, "done"));
    expect(stream.frames.at(-1)?.event).toBe("complete");
  });

  it("a quiet run keeps its whole log while busy runs record ten times historySize", async () => {
    source.createRun({ id: "quiet" });
    source.recordEvent("quiet", { type: "unit.started", unit: "q" });
    source.createRun({ id: "busy" });
    for (let i = 0; i < 200; i++) source.recordEvent("busy", { type: "unit.progress", n: i });
    const stream = await SseStream.open(`${t.url}/api/runs/quiet/stream?from=start`);
    await stream.frameCount(2);
    source.recordEvent("quiet", { type: "unit.completed", unit: "q" });
    await stream.frameCount(3);
    expect(shape(stream.frames)).toEqual(logOf(recorded, "quiet"));
    stream.close();
  });

  it("a trimmed log: from=start and an old Last-Event-ID get resync (trimmed) then the snapshot", async () => {
    const small = new MemoryRunSource({ maxRunLogSize: 5 });
    // The router's memory of recent frames off: it would serve what the log no longer holds.
    const s = await serve(small, { heartbeatMs: 60_000, resumeCacheBytes: 0 });
    try {
      small.createRun({ id: "r" });
      const old = small.lastId as string;
      for (let i = 0; i < 10; i++) small.recordEvent("r", { type: "unit.progress", n: i });
      const cursor = small.lastId;
      for (const [query, headers] of [
        ["?from=start", {}],
        ["", { "Last-Event-ID": old }],
        ["?from=start", { "Last-Event-ID": old }],
      ] as const) {
        const stream = await SseStream.open(`${s.url}/api/runs/r/stream${query}`, headers);
        await stream.frameCount(2);
        expect(stream.frames[0]).toMatchObject({
          event: "resync",
          id: undefined,
          json: { reason: "trimmed", runId: "r" },
        });
        expect(stream.frames[1]).toMatchObject({ event: "state", id: cursor });
        stream.close();
      }
    } finally {
      await s.close();
    }
  });

  it("an unknown or malformed Last-Event-ID gets resync (unknown_id); a fresh connection never gets resync", async () => {
    source.createRun({ id: "r" });
    source.recordEvent("r", { type: "unit.started" });
    for (const id of ["nonsense", "1-1", `${source.lastId}0`, "x".repeat(300), "01-1"]) {
      const stream = await SseStream.open(`${t.url}/api/runs/r/stream`, { "Last-Event-ID": id });
      await stream.frameCount(2);
      expect(shape(stream.frames)).toEqual([
        ["resync", undefined],
        ["state", source.lastId],
      ]);
      expect(stream.frames[0]?.json).toEqual({ reason: "unknown_id", runId: "r" });
      stream.close();
    }
    const global = await SseStream.open(`${t.url}/api/stream`, { "Last-Event-ID": "nonsense" });
    await global.frameCount(2);
    expect(global.frames[0]).toMatchObject({ event: "resync", json: { reason: "unknown_id" } });
    expect(Object.keys(global.frames[0]?.json ?? {})).toEqual(["reason"]);
    global.close();
    for (const url of [`${t.url}/api/runs/r/stream`, `${t.url}/api/stream`]) {
      const fresh = await SseStream.open(url);
      await fresh.frameCount(1);
      expect(fresh.frames[0]?.event).toBe("state");
      expect(fresh.raw).not.toContain("resync");
      fresh.close();
    }
  });

  it("the global stream resyncs with reason trimmed when its history no longer reaches back", async () => {
    // The router's memory of recent frames off: it would serve what the history no longer holds.
    const forgetful = await serve(source, { heartbeatMs: 60_000, resumeCacheBytes: 0 });
    source.createRun({ id: "a" });
    const old = source.lastId as string;
    for (let i = 0; i < 30; i++) source.recordEvent("a", { type: "unit.progress", n: i });
    const stream = await SseStream.open(`${forgetful.url}/api/stream`, { "Last-Event-ID": old });
    await stream.frameCount(2);
    expect(stream.frames[0]).toMatchObject({ event: "resync", json: { reason: "trimmed" } });
    expect(stream.frames[1]).toMatchObject({ event: "state", id: source.lastId });
    stream.close();
    await forgetful.close();
  });

  it("a browser's reconnect of a from=start stream (same URL plus Last-Event-ID) resumes and does not restart", async () => {
    source.createRun({ id: "r" });
    for (let i = 0; i < 5; i++) source.recordEvent("r", { type: "unit.progress", n: i });
    const { es, seen, requests } = browserStream(t, "/api/runs/r/stream?from=start");
    try {
      await eventually(() => seen.length === 6, "the run's log");
      // The server drops every connection; EventSource reconnects by itself with Last-Event-ID.
      t.server.closeAllConnections();
      await eventually(() => requests.length >= 2 && t.router.clientCount("r") === 1, "the reconnect");
      source.recordEvent("r", { type: "unit.completed", n: 5 });
      source.completeRun("r", { status: "completed" });
      await eventually(() => seen.some(([type]) => type === "complete"), "the complete frame");
    } finally {
      es.close();
    }
    expect(requests[1]).toBe(recorded.filter((e) => e.runId === "r")[5]?.id);
    expect(seen).toEqual(logOf(recorded, "r"));
  });

  it("refuses from with any other value, and from on the global stream, with 400 invalid_query", async () => {
    source.createRun({ id: "r" });
    for (const path of [
      "/api/runs/r/stream?from=end",
      "/api/runs/r/stream?from=",
      "/api/runs/r/stream?from=start&from=start",
      "/api/stream?from=start",
    ]) {
      const res = await request(t.app).get(path);
      expect(res.status).toBe(400);
      expect(res.body.error.code).toBe("invalid_query");
    }
  });

  it("a run that does not exist answers 404 to from=start", async () => {
    const res = await request(t.app).get("/api/runs/ghost/stream?from=start");
    expect(res.status).toBe(404);
    expect(res.body.error.code).toBe("run_not_found");
  });

  it("forgets a finished run whole after finishedRunTtlMs: its streams answer 404", async () => {
    const ttl = new MemoryRunSource({ finishedRunTtlMs: 100 });
    const s = await serve(ttl, { heartbeatMs: 60_000 });
    try {
      ttl.createRun({ id: "r" });
      ttl.completeRun("r", { status: "completed" });
      expect(ttl.readLog({ runId: "r", limit: 10 })).toMatchObject({
        envelopes: [{ type: "state" }, { type: "complete" }],
      });
      await eventually(() => ttl.getRun("r") === undefined, "the finished run to be forgotten");
      const res = await request(s.app).get("/api/runs/r/stream?from=start");
      expect(res.status).toBe(404);
      expect(ttl.readLog({ runId: "r", limit: 10 })).toBeUndefined();
    } finally {
      await s.close();
    }
  });
});

describe("a minimal adapter without readLog", () => {
  it("answers from=start with resync and a snapshot, and still serves fresh connections as before", async () => {
    const source = new BareSource();
    const state: RunState = { id: "r", status: "running", completed_units: 1 };
    source.runs.set("r", state);
    const t = await serve(source as RunEventSource, { heartbeatMs: 60_000 });
    try {
      const resumed = await SseStream.open(`${t.url}/api/runs/r/stream?from=start`);
      await resumed.frameCount(2);
      expect(shape(resumed.frames)).toEqual([
        ["resync", undefined],
        ["state", undefined],
      ]);
      expect(resumed.frames[0]?.json).toEqual({ reason: "trimmed", runId: "r" });
      resumed.close();
      const fresh = await SseStream.open(`${t.url}/api/runs/r/stream`);
      await fresh.frameCount(1);
      expect(shape(fresh.frames)).toEqual([["state", undefined]]);
      fresh.close();
    } finally {
      await t.close();
    }
  });
});
