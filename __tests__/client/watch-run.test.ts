import type { Request } from "express";
import { type RunOptions, type RunWatcher, watchRun } from "../../lib/client";
import { type Envelope, MemoryRunSource, type MemoryRunSourceOptions, type SseRouterOptions } from "../../lib/index";
import { eventually, serve, type TestServer } from "../helpers/server";
import { fromStartResumedLog, Recorder, trackedEventSource } from "./harness";

/** A MemoryRunSource whose replay also sends again the envelope the client said it had: a buggy server's overlap. */
class OverlappingSource extends MemoryRunSource {
  readonly recorded: Envelope[] = [];
  constructor(options?: MemoryRunSourceOptions) {
    super(options);
    this.subscribe((envelope) => this.recorded.push(envelope));
  }
  override replay(afterId: string, runId?: string): Envelope[] | null {
    const after = super.replay(afterId, runId);
    const again = this.recorded.find((envelope) => envelope.id === afterId);
    return after === null || again === undefined ? after : [again, ...after];
  }
}

describe("watchRun in Node, against a real server", () => {
  let t: TestServer;
  let watcher: RunWatcher | undefined;
  /** Every request, with its status once the response finished (streams still open have none). */
  const requests: Array<{ lastEventId: string | undefined; status?: number }> = [];
  /** Answers the next requests with 503 before they reach runcast, when above zero. */
  let refuseNext = 0;

  async function start(source: MemoryRunSource, more: SseRouterOptions = {}): Promise<void> {
    requests.length = 0;
    refuseNext = 0;
    t = await serve(source, { heartbeatMs: 60_000, retryMs: 10, ...more }, (app) =>
      app.use((req: Request, res, next) => {
        const entry: (typeof requests)[number] = {
          lastEventId: req.get("last-event-id") ?? (req.query.lastEventId as string | undefined),
        };
        requests.push(entry);
        res.on("finish", () => {
          entry.status = res.statusCode;
        });
        if (refuseNext > 0) {
          refuseNext--;
          res.status(503).json({ error: { code: "unavailable", message: "try again" } });
          return;
        }
        next();
      }),
    );
  }

  /** Watches `path` on the test server with a fresh Recorder and a tracked EventSource; the watcher is closed after the test. */
  function watch(
    options: Omit<RunOptions, "EventSource"> = {},
    path = "/api/runs/r/stream",
  ): { rec: Recorder; es: ReturnType<typeof trackedEventSource>; w: RunWatcher } {
    const rec = new Recorder();
    const es = trackedEventSource();
    const w = watchRun(`${t.url}${path}`, rec.run(), { EventSource: es.EventSource, ...options });
    watcher = w;
    return { rec, es, w };
  }

  /** Waits for run "r"'s snapshot, then records event 0 and waits for it: the watcher holds a cursor to resume from. */
  async function untilEvent0(source: MemoryRunSource, rec: Recorder): Promise<void> {
    await eventually(() => rec.states.length === 1, "the initial state");
    source.recordEvent("r", { type: "unit.progress", n: 0 });
    await eventually(() => rec.events.length === 1, "event 0");
  }

  /**
   * Starts the server over `source` with run "r", watches it (retrying after 10 ms) until event 0,
   * then drops every connection: the watcher must resume.
   */
  async function watchThenDrop(
    source: MemoryRunSource,
  ): Promise<{ rec: Recorder; es: ReturnType<typeof trackedEventSource>; w: RunWatcher }> {
    await start(source);
    source.createRun({ id: "r" });
    const watched = watch({ retryMs: 10 });
    await untilEvent0(source, watched.rec);
    t.server.closeAllConnections();
    return watched;
  }

  afterEach(async () => {
    watcher?.close();
    watcher = undefined;
    await t.close();
  });

  it("gets the run's state, its events and its complete, then closes itself and its EventSource", async () => {
    const source = new MemoryRunSource();
    await start(source);
    source.createRun({ id: "r", total_units: 2, name: "deploy" });
    const { rec, es, w } = watch();
    expect(w.status).toBe("connecting");
    await eventually(() => rec.states.length === 1, "the initial state");
    expect(rec.states[0]).toMatchObject({ snapshot: true, id: source.lastId });

    source.recordEvent("r", { type: "unit.started", unit: "api", n: 1 });
    source.updateRun("r", { status: "running", completed_units: 1 });
    source.completeRun("r", { status: "completed", completed_units: 2 });
    await eventually(() => w.status === "closed", "the watcher to close after complete");

    expect(rec.log).toEqual([
      "status:live",
      "state:r:0:snapshot",
      "event:r:1",
      "state:r:1",
      "complete:r:completed",
      "status:closed",
    ]);
    // Merged: fields from the first state survive later frames.
    expect(w.state).toMatchObject({ id: "r", status: "completed", completed_units: 2, name: "deploy" });
    expect(rec.events[0]?.event).toMatchObject({ type: "unit.started", unit: "api", run_id: "r" });
    // A closed EventSource never reconnects: no request follows the complete.
    expect(es.instances.map((instance) => instance.readyState)).toEqual([2]);
    expect(requests).toHaveLength(1);
    expect(rec.errors).toEqual([]);
  });

  it("after the server drops it, reconnects by itself and delivers each missed event exactly once", async () => {
    const source = new MemoryRunSource();
    const { rec, es, w } = await watchThenDrop(source);
    source.recordEvent("r", { type: "unit.progress", n: 1 });
    source.updateRun("r", { status: "running", completed_units: 1 });
    source.recordEvent("r", { type: "unit.progress", n: 2 });
    await eventually(() => rec.events.length === 3, "events 1 and 2 after the reconnect");
    source.recordEvent("r", { type: "unit.progress", n: 3 });
    await eventually(() => rec.events.length === 4, "a live event after the reconnect");

    expect(rec.ns).toEqual([0, 1, 2, 3]);
    expect(new Set(rec.events.map((e) => e.id)).size).toBe(4);
    expect(rec.resyncs).toEqual([]);
    expect(rec.statuses).toEqual(["live", "reconnecting", "live"]);
    expect(w.state).toMatchObject({ status: "running", completed_units: 1 });
    expect(requests.map((r) => r.lastEventId)).toEqual([undefined, rec.events[0]?.id]);
    // The watcher reconnects itself: the EventSource that dropped is closed, a new one resumes.
    expect(es.instances.map((instance) => instance.readyState)).toEqual([2, 1]);
  });

  it("a resumed stream that starts with a replayed state is not a resync: no onResync, no snapshot", async () => {
    const source = new MemoryRunSource();
    const { rec } = await watchThenDrop(source);
    // The first envelope the reconnect misses is a state change: the replay starts with it.
    source.updateRun("r", { status: "running", completed_units: 1 });
    source.recordEvent("r", { type: "unit.progress", n: 1 });
    await eventually(() => rec.events.length === 2, "event 1 after the reconnect");

    expect(rec.log).toEqual([
      "status:live",
      "state:r:0:snapshot",
      "event:r:0",
      "status:reconnecting",
      "status:live",
      "state:r:1",
      "event:r:1",
    ]);
    expect(rec.resyncs).toEqual([]);
    expect(requests.map((r) => r.lastEventId)).toEqual([undefined, rec.events[0]?.id]);
  });

  it("never delivers an envelope twice, even when the server replays one it already sent", async () => {
    const source = new OverlappingSource();
    const { rec } = await watchThenDrop(source);
    source.recordEvent("r", { type: "unit.progress", n: 1 });
    await eventually(() => rec.events.length === 2, "event 1 after the reconnect");
    source.recordEvent("r", { type: "unit.progress", n: 2 });
    await eventually(() => rec.events.length === 3, "a live event");

    expect(rec.ns).toEqual([0, 1, 2]);
    expect(rec.resyncs).toEqual([]);
  });

  it("calls onResync with the fresh state when the history no longer reaches back", async () => {
    const source = new MemoryRunSource({ historySize: 2, maxRunLogSize: 2 });
    // The router's memory of recent frames off: it would serve what the log no longer holds.
    await start(source, { resumeCacheBytes: 0 });
    source.createRun({ id: "r", total_units: 5 });
    const { rec, w } = watch();
    await untilEvent0(source, rec);

    t.server.closeAllConnections();
    // More envelopes than the history keeps: the reconnect cannot be replayed.
    source.recordEvent("r", { type: "unit.progress", n: 1 });
    source.updateRun("r", { status: "running", completed_units: 2 });
    source.recordEvent("r", { type: "unit.progress", n: 2 });
    source.updateRun("r", { completed_units: 3 });
    const cursor = source.lastId;
    await eventually(() => rec.resyncs.length === 1, "the resync");
    source.recordEvent("r", { type: "unit.progress", n: 4 });
    await eventually(() => rec.events.length === 2, "a live event after the resync");

    expect(rec.log).toEqual([
      "status:live",
      "state:r:0:snapshot",
      "event:r:0",
      "status:reconnecting",
      "status:live",
      "state:r:3:snapshot",
      "resync:trimmed:3",
      "event:r:4",
    ]);
    // The snapshot frame carries its cursor: the newest envelope it reflects.
    expect(rec.states[1]?.id).toBe(cursor);
    expect(w.state).toMatchObject({ status: "running", completed_units: 3, total_units: 5 });
  });

  it('with from: "start", a late watcher gets the run\'s whole log in order, resumes after a drop without restarting, then live frames', async () => {
    const source = new MemoryRunSource();
    await start(source);
    source.createRun({ id: "r", total_units: 3 });
    source.recordEvent("r", { type: "unit.started", n: 0 });
    source.updateRun("r", { status: "running", completed_units: 1 });
    source.recordEvent("r", { type: "unit.progress", n: 1 });
    const { rec, w } = watch({ retryMs: 10, from: "start" });
    await eventually(() => rec.events.length === 2, "the log");
    t.server.closeAllConnections();
    source.recordEvent("r", { type: "unit.progress", n: 2 });
    await eventually(() => rec.events.length === 3, "the event missed during the drop");
    source.completeRun("r", { status: "completed", completed_units: 3 });
    await eventually(() => w.status === "closed", "the complete");

    // The log's own frames (no snapshot), each once; the reconnect resumed rather than restarted.
    expect(rec.log).toEqual(fromStartResumedLog("completed"));
    expect(rec.resyncs).toEqual([]);
    expect(requests.map((r) => r.lastEventId)).toEqual([undefined, rec.events[1]?.id]);
  });

  it('with from: "start", a finished run\'s whole log arrives and ends with complete', async () => {
    const source = new MemoryRunSource();
    await start(source);
    source.createRun({ id: "r" });
    source.recordEvent("r", { type: "unit.failed", n: 0 });
    source.completeRun("r", { status: "failed", completed_units: 0 });
    const { rec, w } = watch({ from: "start" });
    await eventually(() => w.status === "closed", "the complete");
    expect(rec.log).toEqual(["status:live", "state:r:0", "event:r:0", "complete:r:failed", "status:closed"]);
  });

  it("a finished run gives its final state and complete, and the watcher closes", async () => {
    const source = new MemoryRunSource();
    await start(source);
    source.createRun({ id: "r" });
    source.completeRun("r", { status: "failed", completed_units: 0, reason: "boom" });
    const { rec, es, w } = watch();
    await eventually(() => w.status === "closed", "the watcher to close");
    expect(rec.log).toEqual(["status:live", "state:r:0:snapshot", "complete:r:failed", "status:closed"]);
    expect(w.state).toMatchObject({ status: "failed", reason: "boom" });
    expect(es.instances.map((instance) => instance.readyState)).toEqual([2]);
  });

  it("reopens a stream the EventSource gave up on (HTTP 503), resuming after the last id", async () => {
    const source = new MemoryRunSource();
    await start(source);
    source.createRun({ id: "r" });
    const { rec, es } = watch({ retryMs: 5 });
    await untilEvent0(source, rec);

    refuseNext = 1;
    t.server.closeAllConnections();
    source.recordEvent("r", { type: "unit.progress", n: 1 });
    await eventually(() => rec.events.length === 2, "event 1 through a new EventSource");

    expect(rec.ns).toEqual([0, 1]);
    expect(rec.errors.map((e) => [e.code, e.status])).toEqual([["stream_failed", 503]]);
    expect(rec.statuses).toEqual(["live", "reconnecting", "live"]);
    expect(es.instances.map((instance) => instance.readyState)).toEqual([2, 2, 1]);
    // Each new EventSource resumes through the lastEventId query parameter.
    expect(requests.map((r) => r.lastEventId)).toEqual([undefined, rec.events[0]?.id, rec.events[0]?.id]);
    expect(requests[1]?.status).toBe(503);
  });

  it("closes with stream_refused when the server refuses the stream for good (404)", async () => {
    await start(new MemoryRunSource());
    const { rec, w } = watch({}, "/api/runs/nope/stream");
    await eventually(() => w.status === "closed", "the watcher to close");
    expect(rec.errors.map((e) => [e.code, e.status])).toEqual([["stream_refused", 404]]);
    expect(rec.statuses).toEqual(["closed"]);
    expect(requests).toHaveLength(1);
  });

  it("close() while waiting to reopen cancels the attempt", async () => {
    const source = new MemoryRunSource();
    await start(source);
    refuseNext = 1;
    source.createRun({ id: "r" });
    // A long first delay: the test closes the watcher while it waits.
    const { rec, es, w } = watch({ retryMs: 60_000 });
    await eventually(() => w.status === "reconnecting", "the failed first attempt");
    w.close();
    expect(w.status).toBe("closed");
    expect(rec.statuses).toEqual(["reconnecting", "closed"]);
    expect(es.instances).toHaveLength(1);
    expect(es.instances[0]?.readyState).toBe(2);
  });
});

describe("watchRun with frames that are not valid", () => {
  let t: TestServer;
  afterEach(() => t.close());

  it("reports each invalid frame to onError and skips it", async () => {
    t = await serve(new MemoryRunSource(), {}, (app) =>
      app.get("/handmade", (_req, res) => {
        res.writeHead(200, { "Content-Type": "text/event-stream" });
        const state = (status: string) => JSON.stringify({ id: "r", status, completed_units: 0 });
        const event = (runId: string, n: number) =>
          JSON.stringify({ type: "unit.progress", run_id: runId, ts: "2026-01-01T00:00:00Z", n });
        res.write(`event: state\nid: 1\ndata: ${state("running")}\n\n`);
        res.write("event: event\nid: 2\ndata: not json\n\n");
        res.write(`event: event\nid: 3\ndata: {"type":"Not A Type","run_id":"r","ts":"2026-01-01T00:00:00Z"}\n\n`);
        res.write(`event: event\nid: 4\ndata: ${event("other", 4)}\n\n`);
        res.write(`event: event\nid: 5\ndata: ${event("r", 5)}\n\n`);
        res.write(`event: complete\nid: 6\ndata: ${state("running")}\n\n`);
        res.end(`event: complete\nid: 7\ndata: ${state("cancelled")}\n\n`);
      }),
    );
    const rec = new Recorder();
    const watcher = watchRun(`${t.url}/handmade`, rec.run(), trackedEventSource());
    await eventually(() => watcher.status === "closed", "the watcher to close");
    expect(rec.log).toEqual([
      "status:live",
      "state:r:0:snapshot",
      "error:invalid_frame",
      "error:invalid_frame",
      "error:invalid_frame",
      "event:r:5",
      "error:invalid_frame",
      "complete:r:cancelled",
      "status:closed",
    ]);
    expect(rec.errors.map((e) => e.frame?.id)).toEqual(["2", "3", "4", "6"]);
    expect(rec.errors[2]?.message).toContain('names run "other"');
  });

  it("needs an EventSource: without a global one it says to pass one", () => {
    expect(() => watchRun("http://127.0.0.1:1/api/runs/r/stream", {})).toThrow(/options\.EventSource/);
  });
});
