import { monitorEventLoopDelay } from "node:perf_hooks";
import { MemoryRunSource } from "../../lib/index";
import { crowd, exited, message, type Result } from "../helpers/crowd";
import { eventually, serve, type TestServer, within } from "../helpers/server";
import { SseStream } from "../helpers/sse";

/** Envelopes in the big run's log, and the size of each event's payload. */
const LOG = 10_000;
const PAYLOAD = "x".repeat(900);

/**
 * Resumes tried as an attacker would: many clients replaying a large log at once, and clients
 * that ask for a large log and never read it. The server must stay responsive and bounded.
 */
describe("resumes under load", () => {
  let source: MemoryRunSource;
  let t: TestServer;
  let lastId: string;
  let probe: SseStream;
  let ticker: NodeJS.Timeout;

  beforeAll(async () => {
    source = new MemoryRunSource({ maxRunLogSize: LOG + 10 });
    source.createRun({ id: "big" });
    for (let i = 0; i < LOG - 2; i++) source.recordEvent("big", { type: "unit.progress", n: i, payload: PAYLOAD });
    lastId = source.completeRun("big", { status: "completed" }).id as string;
    source.createRun({ id: "probe" });
    t = await serve(source, { heartbeatMs: 2_000 });
  });
  afterAll(() => t.close());

  beforeEach(async () => {
    // A watcher of another run, fed an event every 10 ms, that must keep receiving throughout.
    probe = await SseStream.open(`${t.url}/api/runs/probe/stream`);
    await probe.frameCount(1);
    let n = 0;
    ticker = setInterval(() => source.recordEvent("probe", { type: "unit.progress", n: n++ }), 10);
  });
  afterEach(() => {
    clearInterval(ticker);
    probe.close();
  });

  /** The probe got every event recorded for its run since its snapshot, in order, once. */
  async function probeIsExact(): Promise<void> {
    const after = probe.frames[0]?.id as string;
    const page = source.readLog({ runId: "probe", after, limit: 100_000 }) as { envelopes: { id?: string }[] };
    const expected = page.envelopes.map((e) => e.id);
    await probe.frameCount(1 + expected.length, 10_000);
    expect(probe.frames.slice(1, 1 + expected.length).map((f) => f.id)).toEqual(expected);
  }

  /** 50 clients resume the big run's whole log at once; answers what they got and the loop's longest delay meanwhile. */
  async function burst(): Promise<{ results: Result[]; maxDelayMs: number }> {
    const child = crowd();
    try {
      const done = message<{ results: Result[] }>(child, "done");
      const delay = monitorEventLoopDelay({ resolution: 5 });
      delay.enable();
      child.send({ url: `${t.url}/api/runs/big/stream?from=start`, clients: 50, mode: "read" });
      const { results } = await within(done, "50 large resumes", 120_000);
      delay.disable();
      return { results, maxDelayMs: delay.max / 1e6 };
    } finally {
      child.kill();
      await exited(child);
    }
  }

  it("50 clients replaying 10,000 envelopes of ~1 KB at once never block the event loop over 50 ms, and each gets all", async () => {
    const probeBefore = probe.frames.length;
    let { results, maxDelayMs } = await burst();
    // A delay can also come from the machine (another process holding the CPU): a block of
    // the server's own shows in every attempt, the machine's rarely twice.
    if (maxDelayMs >= 50) ({ results, maxDelayMs } = await burst());
    for (const result of results) expect(result).toEqual({ status: 200, frames: LOG, lastId });
    expect(maxDelayMs).toBeLessThan(50);
    expect(probe.frames.length).toBeGreaterThan(probeBefore + 10);
    await probeIsExact();
  }, 240_000);

  it("300 clients asking for a large log and never reading it: the server stays up, heap bounded, others exact", async () => {
    const child = crowd();
    try {
      const baseline = process.memoryUsage().heapUsed;
      let peak = baseline;
      const sampler = setInterval(() => {
        peak = Math.max(peak, process.memoryUsage().heapUsed);
      }, 20);
      try {
        const stalled = message(child, "stalled");
        child.send({ url: `${t.url}/api/runs/big/stream?from=start`, clients: 300, mode: "stall" });
        await within(stalled, "300 stalled resumes", 60_000);
        // Those whose sockets stopped draining are cut off after the stall deadline (one heartbeat period).
        const cut = t.router.stats().slowClientsCutOff;
        await eventually(
          () => t.router.clientCount("big") === 0 || t.router.stats().slowClientsCutOff > cut,
          "a stalled client to be cut off",
          20_000,
        );
        await probeIsExact();
      } finally {
        clearInterval(sampler);
      }
      expect((peak - baseline) / 2 ** 20).toBeLessThan(200);
      const stopped = message(child, "stopped");
      child.send({ type: "stop" });
      await stopped;
      await eventually(() => t.router.clientCount("big") === 0, "every stalled client to leave", 20_000);
    } finally {
      child.kill();
      await exited(child);
    }
  }, 180_000);
});
