import type { Request } from "express";
import request from "supertest";
import { MemoryRunSource, RuncastError, type StreamScope } from "../../lib/index";
import { eventually, serve, type TestServer } from "../helpers/server";
import { type SseFrame, SseStream } from "../helpers/sse";

/** The run a frame is about (`state`/`complete` data name it as `id`, events as `run_id`). */
function runOf(frame: SseFrame): unknown {
  return frame.event === "event" ? frame.json.run_id : frame.json.id;
}

/** A scope handed to `authorize` through a test header, so each request can carry its own. */
function scopeFromHeader(req: Request): boolean | StreamScope {
  const header = req.get("x-scope");
  return header === undefined ? true : (JSON.parse(header) as StreamScope);
}

describe("run tags", () => {
  it("are set at createRun, validated, and appear in the run's state", () => {
    const source = new MemoryRunSource();
    expect(source.createRun({ id: "r1", tags: ["user:42", "team:web"] }).tags).toEqual(["user:42", "team:web"]);
    for (const tags of [["bad tag"], [""], ["x".repeat(129)], Array.from({ length: 33 }, (_, i) => `t${i}`)]) {
      expect(() => source.createRun({ id: "r2", tags })).toThrow(expect.objectContaining({ code: "invalid_state" }));
    }
    expect(source.getRun("r2")).toBeUndefined();
    expect(source.createRun({ id: "r3", tags: Array.from({ length: 32 }, (_, i) => `t${i}`) }).tags).toHaveLength(32);
  });

  it("cannot change: updateRun or completeRun that would change them throws tags_fixed and changes nothing", () => {
    const source = new MemoryRunSource();
    source.createRun({ id: "r1", tags: ["a", "b"] });
    source.createRun({ id: "plain" });
    const before = source.lastId;
    const attempts: Array<() => unknown> = [
      () => source.updateRun("r1", { tags: ["a"] }),
      () => source.updateRun("r1", { tags: ["b", "a"] }),
      () => source.updateRun("r1", { tags: undefined, completed_units: 1 }),
      () => source.updateRun("plain", { tags: ["a"] }),
      () => source.completeRun("r1", { status: "completed", tags: ["a", "b", "c"] }),
    ];
    for (const attempt of attempts) {
      let caught: unknown;
      try {
        attempt();
      } catch (error) {
        caught = error;
      }
      expect(caught).toBeInstanceOf(RuncastError);
      expect((caught as RuncastError).code).toBe("tags_fixed");
    }
    expect(source.lastId).toBe(before);
    expect(source.getRun("r1")).toMatchObject({ tags: ["a", "b"], completed_units: 0, status: "pending" });
    // Repeating the same tags (a whole state spread back in) is no change.
    const { status: _status, ...state } = source.getRun("r1") ?? { status: "" };
    expect(source.updateRun("r1", { ...state, completed_units: 2 }).tags).toEqual(["a", "b"]);
    expect(source.completeRun("r1", { ...source.getRun("r1"), status: "completed" }).data.tags).toEqual(["a", "b"]);
  });
});

describe("scopes and filters", () => {
  let source: MemoryRunSource;
  let t: TestServer;

  beforeEach(async () => {
    source = new MemoryRunSource();
    source.createRun({ id: "web1", tags: ["team:web"] });
    source.createRun({ id: "web2", tags: ["team:web", "user:1"] });
    source.createRun({ id: "ops1", tags: ["team:ops"] });
    source.createRun({ id: "bare" });
    t = await serve(source, { authorize: scopeFromHeader });
  });
  afterEach(() => t.close());

  /** Records one event per run, in a fixed order, and answers the runs written to. */
  function writeAll(): string[] {
    const runs = ["web1", "ops1", "web2", "bare"];
    for (const run of runs) source.recordEvent(run, { type: "unit.progress", n: 1 });
    return runs;
  }

  it("refuses bad filters with 400 invalid_query naming the problem", async () => {
    const cases: Array<[string, RegExp]> = [
      ["tags=bad%20tag", /invalid tag "bad tag" in tags/],
      ["runs=ok,no%2Fslash", /invalid run id "no\/slash" in runs/],
      ["tags=", /tags is empty/],
      [`runs=${Array.from({ length: 101 }, (_, i) => `r${i}`).join(",")}`, /runs lists 101 entries: at most 100/],
      [`tags=${"x".repeat(129)}`, /invalid tag/],
    ];
    for (const [query, message] of cases) {
      const res = await request(t.url).get(`/api/stream?${query}`).expect(400);
      expect(res.body.error.code).toBe("invalid_query");
      expect(res.body.error.message).toMatch(message);
    }
    const perRun = await request(t.url).get("/api/runs/web1/stream?tags=team:web").expect(400);
    expect(perRun.body.error.message).toMatch(/tags is not supported on a run's stream/);
    const ok = await SseStream.open(`${t.url}/api/stream?runs=${Array.from({ length: 100 }, (_, i) => `r${i}`)}`);
    expect(ok.status).toBe(200);
    ok.close();
  });

  it("?tags= and ?runs= combine as a union, on the snapshot and on live frames", async () => {
    const s = await SseStream.open(`${t.url}/api/stream?tags=team:ops,user:1&runs=bare`);
    await s.frameCount(3);
    expect(s.frames.map(runOf)).toEqual(["web2", "ops1", "bare"]);
    writeAll();
    await s.frameCount(6);
    expect(s.frames.slice(3).map(runOf)).toEqual(["ops1", "web2", "bare"]);
    expect(s.raw).not.toMatch(/web1/);
    s.close();
  });

  it("authorize's scope meets the filters (scope ∩ filters), and a filter cannot widen a scope", async () => {
    const scope = JSON.stringify({ tags: ["team:web"] });
    const s = await SseStream.open(`${t.url}/api/stream?runs=web1,ops1`, { "x-scope": scope });
    await s.frameCount(1);
    writeAll();
    source.completeRun("ops1", { status: "completed" });
    source.updateRun("web1", { completed_units: 1 });
    await s.until(() => s.frames.length === 3, "web1's frames");
    expect(s.frames.map((f) => [f.event, runOf(f)])).toEqual([
      ["state", "web1"],
      ["event", "web1"],
      ["state", "web1"],
    ]);
    expect(s.raw).not.toMatch(/ops1|web2|bare/);
    s.close();
  });

  it("an empty scope sees no run", async () => {
    const s = await SseStream.open(`${t.url}/api/stream`, { "x-scope": JSON.stringify({ tags: [] }) });
    const marker = await SseStream.open(`${t.url}/api/stream?runs=bare`);
    await marker.frameCount(1);
    writeAll();
    await marker.frameCount(2);
    expect(s.frames).toEqual([]);
    expect(s.raw).toMatch(/^retry: ?\d+\n+$/);
    s.close();
    marker.close();
  });

  it("a run's stream outside the scope is 403; under a tags scope a missing run is 403 too, under a runs scope 404", async () => {
    const web = JSON.stringify({ tags: ["team:web"] });
    await request(t.url).get("/api/runs/ops1/stream").set("x-scope", web).expect(403);
    const missing = await request(t.url).get("/api/runs/ghost/stream").set("x-scope", web).expect(403);
    expect(missing.body.error.code).toBe("forbidden");
    const named = JSON.stringify({ runs: ["ghost", "ops1"] });
    const notFound = await request(t.url).get("/api/runs/ghost/stream").set("x-scope", named).expect(404);
    expect(notFound.body.error.code).toBe("run_not_found");
    // Both: listed by run in one, by tag in the other: the tag scope decides a missing run.
    const both = JSON.stringify({ tags: ["team:web"], runs: ["ghost"] });
    await request(t.url).get("/api/runs/ghost/stream").set("x-scope", both).expect(404);

    const s = await SseStream.open(`${t.url}/api/runs/web2/stream`, { "x-scope": web });
    await s.frameCount(1);
    expect(s.status).toBe(200);
    expect(runOf(s.frames[0] as SseFrame)).toBe("web2");
    s.close();
  });

  it("an authorize answer that is neither a boolean nor a valid scope is a 500, told to onError", async () => {
    const seen: unknown[] = [];
    const bad = await serve(source, { authorize: () => ({ tags: ["bad tag"] }), onError: (e) => seen.push(e) });
    try {
      const res = await request(bad.url).get("/api/stream").expect(500);
      expect(res.body.error.code).toBe("internal_error");
      expect(String(seen[0])).toMatch(/authorize answered neither/);
    } finally {
      await bad.close();
    }
  });

  it("a source failing while a run's tags are read for a scope check is a 500 told to onError, not a 403", async () => {
    const seen: string[] = [];
    const failing = new MemoryRunSource();
    failing.createRun({ id: "r1", tags: ["team:web"] });
    failing.getRun = () => {
      throw new Error("store down");
    };
    const u = await serve(failing, {
      authorize: () => ({ tags: ["team:web"] }),
      onError: (_e, c) => seen.push(c.phase),
    });
    try {
      const res = await request(u.url).get("/api/runs/r2/stream").expect(500);
      expect(res.body.error.code).toBe("internal_error");
      expect(seen).toEqual(["source"]);
    } finally {
      await u.close();
    }
  });

  it("global clients with the same view share one channel, however the view is spelled", async () => {
    const a = await SseStream.open(`${t.url}/api/stream?tags=team:web,team:ops`);
    const b = await SseStream.open(`${t.url}/api/stream?tags=team:ops&tags=team:web,team:ops`);
    const c = await SseStream.open(`${t.url}/api/stream?runs=bare`);
    const d = await SseStream.open(`${t.url}/api/stream`);
    await Promise.all([a.frameCount(3), b.frameCount(3), c.frameCount(1), d.frameCount(4)]);
    expect(t.router.stats().views).toBe(2);
    writeAll();
    await Promise.all([a.frameCount(6), b.frameCount(6), c.frameCount(2), d.frameCount(8)]);
    // Byte for byte the same frames; only `retry:`, drawn per connection, may differ.
    const framesOf = (raw: string): string => raw.replace(/^retry: \d+\n/, "");
    expect(framesOf(a.raw)).toBe(framesOf(b.raw));
    for (const s of [a, b, c, d]) s.close();
    await eventually(() => t.router.stats().views === 0, "the views to close with their clients");
  });

  it("events of a run the router never saw a state of are placed by its tags, looked up, in order", async () => {
    const late = new MemoryRunSource();
    late.createRun({ id: "old", tags: ["team:web"] });
    late.createRun({ id: "other", tags: ["team:ops"] });
    const u = await serve(late);
    try {
      // The runs were created before the router: their first live frames are events.
      const s = await SseStream.open(`${u.url}/api/stream?tags=team:web`);
      await s.frameCount(1);
      for (let i = 0; i < 5; i++) {
        late.recordEvent("other", { type: "unit.progress", n: i });
        late.recordEvent("old", { type: "unit.progress", n: i });
      }
      late.updateRun("old", { completed_units: 1 });
      await s.frameCount(7);
      expect(s.frames.slice(1).map((f) => f.json.n ?? f.event)).toEqual([0, 1, 2, 3, 4, "state"]);
      expect(s.raw).not.toMatch(/other/);
      s.close();
    } finally {
      await u.close();
    }
  });

  it("broadcastAll reaches every client whatever its scope (the documented exception); broadcast does not", async () => {
    const s = await SseStream.open(`${t.url}/api/stream?runs=bare`);
    await s.frameCount(1);
    t.router.broadcastAll({
      type: "state",
      runId: "ops1",
      data: { id: "ops1", status: "running", completed_units: 0 },
    });
    t.router.broadcast({ type: "state", runId: "web1", data: { id: "web1", status: "running", completed_units: 0 } });
    t.router.broadcast({ type: "state", runId: "bare", data: { id: "bare", status: "running", completed_units: 1 } });
    await s.frameCount(3);
    // broadcast follows the views like the source's own envelopes: web1's never arrived.
    expect(s.frames.map(runOf)).toEqual(["bare", "ops1", "bare"]);
    s.close();
  });
});
