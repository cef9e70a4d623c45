import { type RunWatcher, watchRun } from "../../lib/client";
import { MemoryRunSource } from "../../lib/index";
import { eventually, serve, type TestServer } from "../helpers/server";
import { Recorder, trackedEventSource } from "./harness";
import { StallProxy } from "./stall-proxy";

jest.setTimeout(20_000);

describe("runcast/client's watchdog against the real server's heartbeat frames", () => {
  let t: TestServer;
  let proxy: StallProxy;
  let watcher: RunWatcher | undefined;

  afterEach(async () => {
    watcher?.close();
    await proxy.close();
    await t.close();
  });

  it("a connection that stops forwarding is detected within 3 heartbeat intervals and resumed with no loss", async () => {
    const intervalMs = 200;
    const source = new MemoryRunSource();
    t = await serve(source, { heartbeatMs: intervalMs });
    proxy = await StallProxy.start(t.url);
    source.createRun({ id: "r" });
    const rec = new Recorder();
    let reconnectingAt = 0;
    const handlers = rec.run();
    const onStatus = handlers.onStatus;
    handlers.onStatus = (status) => {
      if (status === "reconnecting" && reconnectingAt === 0) reconnectingAt = Date.now();
      onStatus?.(status);
    };
    watcher = watchRun(`${proxy.url}/api/runs/r/stream`, handlers, { ...trackedEventSource(), retryMs: 10 });
    await eventually(() => rec.states.length === 1, "the snapshot");
    source.recordEvent("r", { type: "unit.progress", n: 1 });
    await eventually(() => rec.events.length === 1, "event 1");
    // Heartbeats reach it: still one connection after more than 3 intervals of quiet.
    const quietUntil = Date.now() + 5 * intervalMs;
    await eventually(() => Date.now() > quietUntil, "five quiet intervals", 5000);
    expect(rec.statuses).toEqual(["live"]);
    source.recordEvent("r", { type: "unit.progress", n: 2 });
    await eventually(() => rec.events.length === 2, "event 2");
    const stalledAt = Date.now();
    proxy.stall();
    source.recordEvent("r", { type: "unit.progress", n: 3 });
    source.recordEvent("r", { type: "unit.progress", n: 4 });
    await eventually(() => reconnectingAt > 0, "the watchdog", 10_000);
    console.log("detected after", reconnectingAt - stalledAt);
    expect(reconnectingAt - stalledAt).toBeLessThanOrEqual(3 * intervalMs + 1000);
    await eventually(() => rec.events.length === 4, "the events recorded during the stall");
    source.recordEvent("r", { type: "unit.progress", n: 5 });
    await eventually(() => rec.events.length === 5, "a live event");
    expect(rec.ns).toEqual([1, 2, 3, 4, 5]);
    expect(rec.errors.map((e) => e.code)).toEqual(["stream_stalled"]);
  });
});
