import { type AllRunsWatcher, watchAll } from "../../lib/client";
import { MemoryRunSource } from "../../lib/index";
import { eventually, serve, type TestServer } from "../helpers/server";
import { Recorder, trackedEventSource } from "./harness";

describe("watchAll in Node, against a real server", () => {
  let t: TestServer;
  let watcher: AllRunsWatcher | undefined;

  afterEach(async () => {
    watcher?.close();
    watcher = undefined;
    await t.close();
  });

  function statuses(w: AllRunsWatcher): Record<string, string> {
    return Object.fromEntries([...w.state].map(([id, state]) => [id, `${state.status}:${state.completed_units}`]));
  }

  it("starts with the active runs, then follows every run; finished runs stay with their final state", async () => {
    const source = new MemoryRunSource();
    t = await serve(source, { heartbeatMs: 60_000, retryMs: 10 });
    source.createRun({ id: "a", total_units: 2 });
    source.createRun({ id: "b", total_units: 1 });
    source.createRun({ id: "done" });
    source.completeRun("done", { status: "completed" });
    const rec = new Recorder();
    watcher = watchAll(`${t.url}/api/stream`, rec.all(), { ...trackedEventSource(), retryMs: 10 });
    await eventually(() => rec.states.length === 2, "the snapshot");
    expect(statuses(watcher)).toEqual({ a: "pending:0", b: "pending:0" });
    // Only the snapshot's last frame carries the cursor.
    expect(rec.states.map((s) => [s.snapshot, s.id])).toEqual([
      [true, undefined],
      [true, source.lastId],
    ]);

    source.createRun({ id: "c" });
    source.recordEvent("a", { type: "unit.started", unit: "x", n: 1 });
    source.updateRun("a", { status: "running", completed_units: 1 });
    source.completeRun("b", { status: "failed", completed_units: 0 });
    await eventually(() => rec.completes.length === 1, "b's complete");

    expect(statuses(watcher)).toEqual({ a: "running:1", b: "failed:0", c: "pending:0" });
    expect(rec.log.slice(3)).toEqual(["state:c:0", "event:a:1", "state:a:1", "complete:b:failed"]);
    expect(watcher.status).toBe("live");
    expect(rec.resyncs).toEqual([]);
  });

  it("after a drop, gets every run's missed frames exactly once, without a resync", async () => {
    const source = new MemoryRunSource();
    t = await serve(source, { heartbeatMs: 60_000, retryMs: 10 });
    source.createRun({ id: "a" });
    source.createRun({ id: "b" });
    const rec = new Recorder();
    watcher = watchAll(`${t.url}/api/stream`, rec.all(), { ...trackedEventSource(), retryMs: 10 });
    await eventually(() => rec.states.length === 2, "the snapshot");
    source.recordEvent("a", { type: "unit.progress", n: 0 });
    await eventually(() => rec.events.length === 1, "event 0");

    t.server.closeAllConnections();
    source.updateRun("b", { status: "running", completed_units: 1 });
    source.recordEvent("b", { type: "unit.progress", n: 1 });
    source.completeRun("a", { status: "completed", completed_units: 1 });
    source.recordEvent("b", { type: "unit.progress", n: 2 });
    await eventually(() => rec.events.length === 3, "the missed events");

    expect(rec.ns).toEqual([0, 1, 2]);
    expect(rec.completes.map((s) => s.id)).toEqual(["a"]);
    expect(statuses(watcher)).toEqual({ a: "completed:1", b: "running:1" });
    expect(rec.statuses).toEqual(["live", "reconnecting", "live"]);
    // The replay started with a state frame: no resync frame, so no onResync.
    expect(rec.log.slice(rec.log.indexOf("status:reconnecting"))[2]).toBe("state:b:1");
    expect(rec.resyncs).toEqual([]);
  });

  it("resyncs from a fresh snapshot when the history no longer reaches back, dropping runs that ended meanwhile", async () => {
    const source = new MemoryRunSource({ historySize: 2, maxRunLogSize: 2 });
    // The router's memory of recent frames off: it would serve what the history no longer holds.
    t = await serve(source, { heartbeatMs: 60_000, retryMs: 10, resumeCacheBytes: 0 });
    source.createRun({ id: "a" });
    source.createRun({ id: "b" });
    source.createRun({ id: "c" });
    const rec = new Recorder();
    watcher = watchAll(`${t.url}/api/stream`, rec.all(), { ...trackedEventSource(), retryMs: 10 });
    await eventually(() => rec.states.length === 3, "the snapshot");
    source.recordEvent("a", { type: "unit.progress", n: 0 });
    await eventually(() => rec.events.length === 1, "event 0");

    t.server.closeAllConnections();
    source.completeRun("a", { status: "completed" });
    source.createRun({ id: "d" });
    source.updateRun("b", { status: "running", completed_units: 2 });
    source.recordEvent("c", { type: "unit.progress", n: 1 });
    await eventually(() => rec.resyncs.length === 1, "the resync");
    source.recordEvent("d", { type: "unit.progress", n: 2 });
    await eventually(() => rec.events.length === 2, "a live event after the resync");

    expect(rec.resyncs).toEqual([{ reason: "trimmed", runs: ["b", "c", "d"], removed: ["a"] }]);
    expect(statuses(watcher)).toEqual({ b: "running:2", c: "pending:0", d: "pending:0" });
    // Missed events are not invented: after event 0 comes the first live one.
    expect(rec.ns).toEqual([0, 2]);
  });

  it("keeps at most maxFinishedRuns finished runs", async () => {
    const source = new MemoryRunSource();
    t = await serve(source, { heartbeatMs: 60_000 });
    const rec = new Recorder();
    watcher = watchAll(`${t.url}/api/stream`, rec.all(), { ...trackedEventSource(), maxFinishedRuns: 2 });
    await eventually(() => watcher?.status === "live", "the stream to open");
    for (const id of ["r1", "r2", "r3", "r4"]) {
      source.createRun({ id });
      source.completeRun(id, { status: "completed" });
    }
    source.createRun({ id: "active" });
    await eventually(() => rec.completes.length === 4 && watcher?.state.has("active") === true, "every frame");
    expect([...watcher.state.keys()].sort()).toEqual(["active", "r3", "r4"]);
  });
});
