import http from "node:http";
import { MemoryRunSource, type RunEventSource } from "../../lib/index";
import { get } from "../helpers/http-get";
import { eventually, serve, type TestServer, within } from "../helpers/server";
import { type SseFrame, SseStream } from "../helpers/sse";

const DRAIN_MS = 1500;
const RUN_CLIENTS = 16;
const GLOBAL_CLIENTS = 4;

/** The `n` of every event frame of run `runId`, in order of arrival. */
function eventNumbers(frames: readonly SseFrame[], runId: string): number[] {
  return frames.filter((f) => f.event === "event" && f.json.run_id === runId).map((f) => f.json.n as number);
}

function lastId(frames: readonly SseFrame[]): string | undefined {
  return frames.filter((f) => f.id !== undefined).at(-1)?.id;
}

/**
 * Two "processes" (two routers on two servers) over one store, as behind a load balancer:
 * the first one drains, its clients resume on the second.
 */
describe("close({ drainMs })", () => {
  let source: MemoryRunSource;
  let leaving: TestServer;
  let staying: TestServer;
  const opened: SseStream[] = [];
  let writer: NodeJS.Timeout | undefined;

  beforeEach(async () => {
    source = new MemoryRunSource({ historySize: 10_000 });
    leaving = await serve(source, { heartbeatMs: 60_000, retryMs: 50 });
    staying = await serve(source, { heartbeatMs: 60_000, retryMs: 50 });
  });
  afterEach(async () => {
    clearInterval(writer);
    for (const stream of opened.splice(0)) stream.close();
    await leaving.close();
    await staying.close();
  });

  it("ends streams spread over the window, refuses new ones with 503, resolves after the last; every client resumes exactly elsewhere", async () => {
    source.createRun({ id: "r" });
    // Server-side ends of the draining process's responses, as its own clock sees them.
    const serverEnds: number[] = [];
    leaving.server.prependListener("request", (_req: http.IncomingMessage, res: http.ServerResponse) => {
      res.on("close", () => serverEnds.push(performance.now()));
    });
    const runStreams = await Promise.all(
      Array.from({ length: RUN_CLIENTS }, () => SseStream.open(`${leaving.url}/api/runs/r/stream`)),
    );
    const globalStreams = await Promise.all(
      Array.from({ length: GLOBAL_CLIENTS }, () => SseStream.open(`${leaving.url}/api/stream`)),
    );
    const first = [...runStreams, ...globalStreams];
    opened.push(...first);
    await Promise.all(first.map((s) => s.frameCount(1)));

    // Events keep flowing during the drain.
    let recorded = 0;
    const record = (): void => {
      source.recordEvent("r", { type: "unit.progress", n: recorded++ });
    };
    record();
    writer = setInterval(record, 20);

    const clientEnds = first.map((s) => s.end(DRAIN_MS * 4).then(() => performance.now()));
    const recordedAtClose = recorded;
    const started = performance.now();
    let closedAt = 0;
    const closing = leaving.router.close({ drainMs: DRAIN_MS }).then(() => {
      closedAt = performance.now();
    });

    // Mid-drain, a new request is refused, and some streams are still open.
    await eventually(() => performance.now() - started > DRAIN_MS / 3, "a third of the window");
    const refused = await get(`${leaving.url}/api/runs/r/stream`);
    expect(refused.status).toBe(503);
    expect(JSON.parse(refused.body)).toMatchObject({ error: { code: "unavailable" } });
    expect(leaving.router.clientCount()).toBeGreaterThan(0);
    expect(leaving.router.clientCount()).toBeLessThan(RUN_CLIENTS + GLOBAL_CLIENTS);

    const ends = (await within(Promise.all(clientEnds), "every drained stream to end", DRAIN_MS * 4)).map(
      (at) => at - started,
    );
    await within(closing, "close() to resolve", DRAIN_MS * 4);
    clearInterval(writer);

    // Spread over most of the window, not one instant, and none after it (plus scheduling slack).
    const spread = Math.max(...ends) - Math.min(...ends);
    expect(spread).toBeGreaterThan(DRAIN_MS * 0.6);
    expect(Math.max(...ends)).toBeLessThan(DRAIN_MS + 1000);
    const firstHalf = ends.filter((at) => at < DRAIN_MS / 2).length;
    expect(firstHalf).toBeGreaterThanOrEqual(4);
    expect(firstHalf).toBeLessThanOrEqual(16);
    // close() resolved after the last response closed, and no client is left.
    expect(serverEnds).toHaveLength(RUN_CLIENTS + GLOBAL_CLIENTS + 1);
    expect(closedAt).toBeGreaterThanOrEqual(Math.max(...serverEnds));
    expect(leaving.router.clientCount()).toBe(0);
    expect(leaving.router.stats().clientsEnded.drain).toBe(RUN_CLIENTS + GLOBAL_CLIENTS);
    // Streams still open during the drain kept getting live events.
    const lastToEnd = first[ends.indexOf(Math.max(...ends))] as SseStream;
    expect(Math.max(...eventNumbers(lastToEnd.frames, "r"))).toBeGreaterThan(recordedAtClose + 5);

    // Each client resumes on the other process from its last id: no loss, no duplicate.
    const resumed = await Promise.all(
      first.map((s, i) =>
        SseStream.open(i < RUN_CLIENTS ? `${staying.url}/api/runs/r/stream` : `${staying.url}/api/stream`, {
          "Last-Event-ID": lastId(s.frames) ?? "",
        }),
      ),
    );
    opened.push(...resumed);
    const all = [...Array(recorded).keys()];
    await Promise.all(
      resumed.map((s, i) =>
        s.until(
          () =>
            eventNumbers((first[i] as SseStream).frames, "r").length + eventNumbers(s.frames, "r").length >= recorded,
          `client ${i} to catch up`,
        ),
      ),
    );
    for (const [i, s] of resumed.entries()) {
      expect(s.of("resync")).toEqual([]);
      expect([...eventNumbers((first[i] as SseStream).frames, "r"), ...eventNumbers(s.frames, "r")]).toEqual(all);
    }
    expect(staying.router.stats().streamStarts.replayed).toBe(RUN_CLIENTS + GLOBAL_CLIENTS);
  }, 30_000);

  it("close() with no argument still ends every stream at once", async () => {
    source.createRun({ id: "r" });
    const streams = await Promise.all(
      Array.from({ length: 5 }, () => SseStream.open(`${leaving.url}/api/runs/r/stream`)),
    );
    opened.push(...streams);
    await Promise.all(streams.map((s) => s.frameCount(1)));
    const started = performance.now();
    await leaving.router.close();
    expect(leaving.router.clientCount()).toBe(0);
    await Promise.all(streams.map((s) => s.end()));
    // Far less than any drain window: no spreading without drainMs.
    expect(performance.now() - started).toBeLessThan(1000);
  });

  it("a second close() during a drain ends the rest at once", async () => {
    source.createRun({ id: "r" });
    const streams = await Promise.all(
      Array.from({ length: 6 }, () => SseStream.open(`${leaving.url}/api/runs/r/stream`)),
    );
    opened.push(...streams);
    await Promise.all(streams.map((s) => s.frameCount(1)));
    const draining = leaving.router.close({ drainMs: 60_000 });
    expect(leaving.router.clientCount()).toBeGreaterThan(0);
    await within(leaving.router.close(), "the second close()", 5000);
    await within(draining, "the drain's own promise", 5000);
    expect(leaving.router.clientCount()).toBe(0);
    await Promise.all(streams.map((s) => s.end()));
  });

  it("a stream still starting when its turn comes is dropped, not answered 503, so a browser retries it", async () => {
    source.createRun({ id: "r" });
    // The source's snapshot read hangs until released: the request is accepted but not started.
    let release: () => void = () => {};
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const gated: RunEventSource = {
      getRun: (runId) => source.getRun(runId),
      listRuns: () => source.listRuns(),
      subscribe: (listener) => source.subscribe(listener),
      snapshot: async (runId) => {
        await gate;
        return source.snapshot(runId);
      },
    };
    const own = await serve(gated, { heartbeatMs: 60_000 });
    try {
      const outcome = new Promise<string>((resolve) => {
        http
          .get(`${own.url}/api/runs/r/stream`, { agent: false }, (res) => resolve(`status ${res.statusCode}`))
          .on("error", (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message));
      });
      await eventually(() => own.router.clientCount() === 1, "the request to be accepted");
      const closing = own.router.close({ drainMs: 100 });
      expect(await within(outcome, "the dropped request")).toBe("ECONNRESET");
      release();
      await within(closing, "close() to resolve");
      expect(own.router.clientCount()).toBe(0);
    } finally {
      release();
      await own.close();
    }
  });

  it("rejects a drainMs that is not a non-negative integer with invalid_option, closing nothing", async () => {
    source.createRun({ id: "r" });
    for (const drainMs of [-1, 1.5, Number.NaN, "100" as unknown as number]) {
      await expect(leaving.router.close({ drainMs })).rejects.toMatchObject({ code: "invalid_option" });
    }
    const stream = await SseStream.open(`${leaving.url}/api/runs/r/stream`);
    opened.push(stream);
    await stream.frameCount(1);
    expect(stream.status).toBe(200);
  });
});
