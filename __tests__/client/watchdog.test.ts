import type { ServerResponse } from "node:http";
import { type RunWatcher, watchRun } from "../../lib/client";
import { eventually } from "../helpers/server";
import { Recorder, trackedEventSource } from "./harness";
import { StallProxy } from "./stall-proxy";
import { runEvent, runState, sseFrame, WireServer } from "./wire-server";

/**
 * A run's stream as DESIGN.md writes it, from a plain node:http server: a snapshot `state`,
 * then `event` frames with ids (a resume gets those after its id), and, when asked with
 * `?heartbeat=event`, id-less `event: heartbeat` frames with `{"intervalMs":N}` every `everyMs`.
 */
class RunStream {
  readonly log: Array<{ id: string; frame: string }> = [];
  /** Heartbeat frames written, per request number. */
  readonly heartbeats: number[] = [];
  readonly #open = new Set<ServerResponse>();
  wire!: WireServer;

  static async start(everyMs: number, announce: { intervalMs: unknown } = { intervalMs: everyMs }): Promise<RunStream> {
    const stream = new RunStream();
    stream.wire = await WireServer.start(({ n, url, lastEventId, res }) => {
      WireServer.open(res);
      const after = lastEventId === undefined ? -1 : stream.log.findIndex((entry) => entry.id === lastEventId);
      res.write(
        (lastEventId === undefined ? sseFrame("state", runState("r", 0)) : "") +
          stream.log
            .slice(after + 1)
            .map((entry) => entry.frame)
            .join(""),
      );
      stream.#open.add(res);
      stream.heartbeats[n] = 0;
      const timer =
        url.searchParams.get("heartbeat") === "event"
          ? setInterval(() => {
              stream.heartbeats[n] = (stream.heartbeats[n] ?? 0) + 1;
              res.write(sseFrame("heartbeat", announce));
            }, everyMs)
          : undefined;
      res.on("close", () => {
        clearInterval(timer);
        stream.#open.delete(res);
      });
    });
    return stream;
  }

  /** Records event `n` and writes it to every open response. */
  record(n: number): void {
    const id = String(this.log.length + 1);
    const frame = sseFrame("event", runEvent("r", n), id);
    this.log.push({ id, frame });
    for (const res of this.#open) res.write(frame);
  }
}

jest.setTimeout(20_000);

describe("runcast/client's dead-connection watchdog", () => {
  let stream: RunStream;
  let proxy: StallProxy | undefined;
  let watcher: RunWatcher | undefined;

  afterEach(async () => {
    watcher?.close();
    watcher = undefined;
    await proxy?.close();
    proxy = undefined;
    await stream.wire.close();
  });

  /** Handlers that also note when the watcher started reconnecting. */
  function timed(rec: Recorder): { handlers: ReturnType<Recorder["run"]>; reconnectingAt: () => number } {
    let at = 0;
    const handlers = rec.run();
    const onStatus = handlers.onStatus;
    handlers.onStatus = (status) => {
      if (status === "reconnecting" && at === 0) at = Date.now();
      onStatus?.(status);
    };
    return { handlers, reconnectingAt: () => at };
  }

  /**
   * Stalls the proxy once the watcher has surely seen heartbeats, records events into the
   * black hole, and returns when the stall was made.
   */
  async function stallAfterHeartbeats(rec: Recorder): Promise<number> {
    await eventually(() => (stream.heartbeats[0] ?? 0) >= 2, "two heartbeats");
    // TCP keeps order: once event 3 has arrived, so have the heartbeats written before it.
    stream.record(3);
    await eventually(() => rec.events.length === 3, "event 3");
    const stalledAt = Date.now();
    proxy?.stall();
    stream.record(4);
    stream.record(5);
    return stalledAt;
  }

  it("detects a connection that went silent within 3 learnt heartbeat intervals, and resumes with no loss", async () => {
    const intervalMs = 200;
    stream = await RunStream.start(intervalMs);
    proxy = await StallProxy.start(stream.wire.url);
    const rec = new Recorder();
    const { handlers, reconnectingAt } = timed(rec);
    const es = trackedEventSource();
    watcher = watchRun(`${proxy.url}/api/runs/r/stream`, handlers, { ...es, retryMs: 10 });
    await eventually(() => rec.states.length === 1, "the snapshot");
    stream.record(1);
    stream.record(2);
    const stalledAt = await stallAfterHeartbeats(rec);

    await eventually(() => reconnectingAt() > 0, "the watchdog", 10_000);
    const detectedAfter = reconnectingAt() - stalledAt;
    // The last frame arrived just before the stall: detection 3 intervals after it, with
    // headroom for timers on a loaded machine, and not before 2 intervals of real silence.
    expect(detectedAfter).toBeGreaterThanOrEqual(2 * intervalMs);
    expect(detectedAfter).toBeLessThanOrEqual(3 * intervalMs + 1000);
    expect(rec.errors.map((e) => e.code)).toEqual(["stream_stalled"]);

    await eventually(() => rec.events.length === 5, "the events recorded during the stall");
    stream.record(6);
    await eventually(() => rec.events.length === 6, "a live event");
    expect(rec.ns).toEqual([1, 2, 3, 4, 5, 6]);
    expect(rec.statuses).toEqual(["live", "reconnecting", "live"]);
    expect(stream.wire.requests.map((r) => [r.url.searchParams.get("heartbeat"), r.lastEventId])).toEqual([
      ["event", undefined],
      ["event", "3"],
    ]);
    // The stalled connection's EventSource was closed by the watcher, not left open.
    expect(es.instances.map((instance) => instance.readyState)).toEqual([2, 1]);
  });

  it("leaves a quiet but healthy stream alone, and reports a heartbeat frame it cannot read", async () => {
    stream = await RunStream.start(100);
    const rec = new Recorder();
    watcher = watchRun(`${stream.wire.url}/api/runs/r/stream`, rec.run(), { ...trackedEventSource(), retryMs: 10 });
    await eventually(() => rec.states.length === 1, "the snapshot");
    // Eight intervals: more than twice the watchdog's limit, with only heartbeats arriving.
    await eventually(() => (stream.heartbeats[0] ?? 0) >= 8, "eight heartbeats");
    expect(stream.wire.requests).toHaveLength(1);
    expect(rec.statuses).toEqual(["live"]);
    expect(rec.errors).toEqual([]);
    await stream.wire.close();

    stream = await RunStream.start(50, { intervalMs: "soon" });
    const bad = new Recorder();
    watcher.close();
    watcher = watchRun(`${stream.wire.url}/api/runs/r/stream`, bad.run(), trackedEventSource());
    await eventually(() => bad.errors.length > 0, "the invalid heartbeat");
    expect(bad.errors[0]).toMatchObject({
      code: "invalid_frame",
      frame: { type: "heartbeat", data: '{"intervalMs":"soon"}' },
    });
  });

  it("heartbeatMs overrides the interval the heartbeat frames announce", async () => {
    // The frames claim a minute; the page knows better.
    stream = await RunStream.start(100, { intervalMs: 60_000 });
    proxy = await StallProxy.start(stream.wire.url);
    const rec = new Recorder();
    const { handlers, reconnectingAt } = timed(rec);
    watcher = watchRun(`${proxy.url}/api/runs/r/stream`, handlers, {
      ...trackedEventSource(),
      retryMs: 10,
      heartbeatMs: 150,
    });
    await eventually(() => rec.states.length === 1, "the snapshot");
    stream.record(1);
    stream.record(2);
    const stalledAt = await stallAfterHeartbeats(rec);
    await eventually(() => reconnectingAt() > 0, "the watchdog", 10_000);
    expect(reconnectingAt() - stalledAt).toBeLessThanOrEqual(3 * 150 + 1000);
    expect(rec.errors[0]?.message).toContain("3 heartbeat intervals of 150 ms");
    await eventually(() => rec.events.length === 5, "the events recorded during the stall");
    expect(rec.ns).toEqual([1, 2, 3, 4, 5]);
  });
});
