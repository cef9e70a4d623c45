import { type AllRunsWatcher, type RunWatcher, watchAll, watchRun } from "../../lib/client";
import { eventually } from "../helpers/server";
import { fromStartResumedLog, Recorder, trackedEventSource } from "./harness";
import { runEvent, runState, sseFrame, type WireRequest, WireServer } from "./wire-server";

/**
 * The resume outcome on the wire (DESIGN.md, "Run logs"): a resume the server cannot serve
 * exactly starts with an id-less `event: resync` frame, then the snapshot. These tests write
 * those bytes from a plain node:http server, so the client is checked against the wire format
 * itself, including the frames that would have fooled a guess (a resumed stream that starts
 * with a replayed `state`).
 */
describe("runcast/client and the server's resync frame", () => {
  let wire: WireServer;
  let watcher: RunWatcher | AllRunsWatcher | undefined;

  afterEach(async () => {
    watcher?.close();
    watcher = undefined;
    await wire.close();
  });

  /** Starts the wire server; `script[n]` writes the frames of request n (a fast `retry:` first). */
  async function serveScript(script: Array<(req: WireRequest) => string>): Promise<void> {
    wire = await WireServer.start((req) => {
      WireServer.open(req.res);
      req.res.write(`retry: 10\n\n${script[req.n]?.(req) ?? ""}`);
    });
  }

  it("watchRun: onResync fires exactly on a resync frame, with its reason; a replayed leading state does not fire it", async () => {
    await serveScript([
      () => sseFrame("state", runState("r", 0), "1") + sseFrame("event", runEvent("r", 0), "2"),
      // A resumed stream that starts with a replayed state envelope: no resync.
      () => sseFrame("state", runState("r", 1), "3") + sseFrame("event", runEvent("r", 1), "4"),
      () =>
        sseFrame("resync", { reason: "trimmed", runId: "r" }) +
        sseFrame("state", runState("r", 5), "9") +
        sseFrame("event", runEvent("r", 9), "10"),
      () =>
        sseFrame("resync", { reason: "unknown_id", runId: "r" }) +
        sseFrame("state", runState("r", 6), "12") +
        sseFrame("complete", runState("r", 6, "completed"), "13"),
    ]);
    const rec = new Recorder();
    const w = watchRun(`${wire.url}/api/runs/r/stream`, rec.run(), { ...trackedEventSource(), retryMs: 10 });
    watcher = w;
    for (const count of [2, 3, 4]) {
      await eventually(() => rec.events.length + rec.completes.length === count - 1, `the frames of request ${count}`);
      wire.drop();
      await wire.requestCount(count);
    }
    await eventually(() => w.status === "closed", "the watcher to close at complete");

    expect(rec.log).toEqual([
      "status:live",
      "state:r:0:snapshot",
      "event:r:0",
      "status:reconnecting",
      "status:live",
      "state:r:1",
      "event:r:1",
      "status:reconnecting",
      "status:live",
      "state:r:5:snapshot",
      "resync:trimmed:5",
      "event:r:9",
      "status:reconnecting",
      "status:live",
      "state:r:6:snapshot",
      "resync:unknown_id:6",
      "complete:r:completed",
      "status:closed",
    ]);
    expect(wire.requests.map((r) => r.lastEventId)).toEqual([undefined, "2", "4", "10"]);
    // The snapshot replaces the state; it carries the snapshot's cursor as its id.
    expect(rec.states[2]).toMatchObject({ id: "9", snapshot: true });
    expect(rec.errors).toEqual([]);
  });

  it('watchRun with from: "start" asks for ?from=start, gets the log through onState and onEvent, and keeps from=start when resuming', async () => {
    await serveScript([
      () =>
        sseFrame("state", runState("r", 0, "pending"), "1") +
        sseFrame("event", runEvent("r", 0), "2") +
        sseFrame("state", runState("r", 1), "3") +
        sseFrame("event", runEvent("r", 1), "4"),
      () => sseFrame("event", runEvent("r", 2), "5") + sseFrame("complete", runState("r", 2, "failed"), "6"),
    ]);
    const rec = new Recorder();
    const w = watchRun(`${wire.url}/api/runs/r/stream`, rec.run(), {
      ...trackedEventSource(),
      retryMs: 10,
      from: "start",
    });
    watcher = w;
    await eventually(() => rec.events.length === 2, "the log");
    wire.drop();
    await eventually(() => w.status === "closed", "the watcher to close at complete");

    // The log's own frames: no snapshot, no resync.
    expect(rec.log).toEqual(fromStartResumedLog("failed"));
    expect(wire.requests.map((r) => [r.url.searchParams.get("from"), r.lastEventId])).toEqual([
      ["start", undefined],
      ["start", "4"],
    ]);
  });

  it('watchRun with from: "start" reports a trimmed log: resync on the first connection, then the snapshot', async () => {
    await serveScript([
      () =>
        sseFrame("resync", { reason: "trimmed", runId: "r" }) +
        sseFrame("state", runState("r", 40), "90") +
        sseFrame("event", runEvent("r", 41), "91"),
    ]);
    const rec = new Recorder();
    watcher = watchRun(`${wire.url}/api/runs/r/stream`, rec.run(), { ...trackedEventSource(), from: "start" });
    await eventually(() => rec.events.length === 1, "the first live event");
    expect(rec.log).toEqual(["status:live", "state:r:40:snapshot", "resync:trimmed:40", "event:r:41"]);
  });

  it("watchAll: a resync frame's snapshot replaces the runs (removing ended ones); a replayed state or an invalid resync frame does not", async () => {
    await serveScript([
      () =>
        sseFrame("state", runState("a", 0)) +
        sseFrame("state", runState("b", 0)) +
        sseFrame("state", runState("c", 0), "5") +
        sseFrame("event", runEvent("a", 0), "6"),
      () =>
        sseFrame("resync", { reason: "nope" }) +
        sseFrame("state", runState("b", 1), "7") +
        sseFrame("event", runEvent("b", 1), "8"),
      () =>
        sseFrame("resync", { reason: "trimmed" }) +
        sseFrame("state", runState("b", 3)) +
        sseFrame("state", runState("d", 0), "20") +
        sseFrame("event", runEvent("d", 2), "21"),
      // A snapshot of no runs at all: it ends with the next frame.
      () => sseFrame("resync", { reason: "unknown_id" }) + sseFrame("event", runEvent("x", 3), "30"),
    ]);
    const rec = new Recorder();
    const w = watchAll(`${wire.url}/api/stream`, rec.all(), { ...trackedEventSource(), retryMs: 10 });
    watcher = w;
    for (const count of [2, 3, 4]) {
      await eventually(() => rec.events.length === count - 1, `the frames of request ${count}`);
      wire.drop();
      await wire.requestCount(count);
    }
    await eventually(() => rec.events.length === 4, "the last event");

    expect(rec.log.filter((line) => !line.startsWith("status:"))).toEqual([
      "state:a:0:snapshot",
      "state:b:0:snapshot",
      "state:c:0:snapshot",
      "event:a:0",
      "error:invalid_frame",
      "state:b:1",
      "event:b:1",
      "state:b:3:snapshot",
      "state:d:0:snapshot",
      "resync:trimmed",
      "event:d:2",
      "resync:unknown_id",
      "event:x:3",
    ]);
    expect(rec.resyncs).toEqual([
      { reason: "trimmed", runs: ["b", "d"], removed: ["a", "c"] },
      { reason: "unknown_id", runs: [], removed: ["b", "d"] },
    ]);
    expect(rec.errors[0]?.frame).toEqual({ type: "resync", id: undefined, data: '{"reason":"nope"}' });
    expect(wire.requests.map((r) => r.lastEventId)).toEqual([undefined, "6", "8", "21"]);
  });
});
