import { MemoryRunSource } from "../../lib/index";
import { crowd, exited, message, type Result } from "../helpers/crowd";
import { LoopBlockMeter } from "../helpers/loop-block";
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

  it("50 clients replaying 10,000 envelopes of ~1 KB at once never block the event loop over 50 ms, and each gets all", async () => {
    const probeBefore = probe.frames.length;
    const child = crowd();
    const loop = new LoopBlockMeter();
    try {
      const done = message<{ results: Result[] }>(child, "done");
      loop.start();
      child.send({ url: `${t.url}/api/runs/big/stream?from=start`, clients: 50, mode: "read" });
      const { results } = await within(done, "50 large resumes", 120_000);
      loop.stop();
      for (const result of results) expect(result).toEqual({ status: 200, frames: LOG, lastId });
    } finally {
      loop.stop();
      child.kill();
      await exited(child);
    }
    expect(loop.maxBlockMs).toBeLessThan(50);
    expect(probe.frames.length).toBeGreaterThan(probeBefore + 10);
    await probeIsExact();
  }, 180_000);

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

describe("the global stream with very many active runs", () => {
  it("writes its snapshot in pieces: 100,000 runs, ten clients at once, no long block of the event loop", async () => {
    const source = new MemoryRunSource();
    for (let i = 0; i < 100_000; i++) source.createRun({ id: `run-${i}` });
    const t = await serve(source, { heartbeatMs: 60_000 });
    const child = crowd();
    try {
      const probe = await SseStream.open(`${t.url}/api/runs/run-1/stream`);
      await probe.frameCount(1);
      const loop = new LoopBlockMeter().start();
      const done = message<{ results: Result[] }>(child, "done");
      // Ten global clients in another process, each reading until it counted every snapshot frame.
      child.send({ url: `${t.url}/api/stream`, clients: 10, mode: "read", marker: "event: state", until: 100_000 });
      const live = source.recordEvent("run-1", { type: "unit.started" });
      await probe.frameCount(2, 30_000);
      const { results } = await within(done, "ten snapshots of 100,000 runs", 120_000);
      loop.stop();
      for (const result of results) expect(result.frames).toBe(100_000);
      expect(probe.frames[1]?.id).toBe(live.id);
      probe.close();
      // Unpieced, one connect held the loop for the whole snapshot (~160 ms, ~340 ms for ten at
      // once); what remains is the source's own read of 100,000 states, one call per connect.
      // A heap holding 100,000 runs also has full garbage collections of ~100 ms here, whoever
      // allocates: they are left out of this bound (the one on resumes above counts them).
      expect(loop.maxBlockWithoutGcMs).toBeLessThan(50);
    } finally {
      child.kill();
      await exited(child);
      await t.close();
    }
  }, 180_000);
});
