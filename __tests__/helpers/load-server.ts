// A runcast server in a process of its own, for the load tests: the event loop and heap they
// measure are the server's alone, not shared with the test runner's (whose heap grows with
// every test file it ran, and whose garbage collections would count against the server).
// Driven over IPC: { id, op, args } in, { id, result } or { id, error } out.
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import express from "express";
import { MemoryRunSource, type SseRouter, sseRouter } from "../../lib/index";
import { LoopBlockMeter } from "./loop-block";

interface Request {
  id: number;
  op: string;
  args: Record<string, unknown>;
}

let source: MemoryRunSource;
let router: SseRouter;
let server: Server;
let meter: LoopBlockMeter | undefined;
let ticker: NodeJS.Timeout | undefined;
let heap: { baseline: number; peak: number; timer: NodeJS.Timeout } | undefined;

const ops: Record<string, (args: Record<string, unknown>) => unknown> = {
  /** Builds the scenario's runs, then serves them. */
  async start({ scenario, log = 0, payload = 0, runs = 0, heartbeatMs = 2_000 }) {
    source = new MemoryRunSource({ maxRunLogSize: Number(log) + 10 });
    let lastId: string | undefined;
    if (scenario === "big-log") {
      const filler = "x".repeat(Number(payload));
      source.createRun({ id: "big" });
      for (let i = 0; i < Number(log) - 2; i++)
        source.recordEvent("big", { type: "unit.progress", n: i, payload: filler });
      lastId = source.completeRun("big", { status: "completed" }).id;
      source.createRun({ id: "probe" });
    } else {
      for (let i = 0; i < Number(runs); i++) source.createRun({ id: `run-${i}` });
    }
    router = sseRouter(source, { heartbeatMs: Number(heartbeatMs), onError: () => {} });
    const app = express();
    app.use(router);
    server = await new Promise<Server>((resolve) => {
      const s = app.listen(0, "127.0.0.1", () => resolve(s));
    });
    return { port: (server.address() as AddressInfo).port, lastId };
  },
  meterStart() {
    meter = new LoopBlockMeter().start();
    return null;
  },
  meterStop() {
    const m = meter?.stop();
    return { maxBlockMs: m?.maxBlockMs, maxDelayMs: m?.maxDelayMs };
  },
  /** Records an event of `runId` every 10 ms, for a watcher of that run to check it keeps receiving. */
  tickerStart({ runId }) {
    let n = 0;
    ticker = setInterval(() => source.recordEvent(String(runId), { type: "unit.progress", n: n++ }), 10);
    return null;
  },
  tickerStop() {
    clearInterval(ticker);
    return null;
  },
  record({ runId }) {
    return source.recordEvent(String(runId), { type: "unit.started" }).id;
  },
  /** Samples the heap every 20 ms from now on, keeping the peak. */
  heapStart() {
    const baseline = process.memoryUsage().heapUsed;
    const timer = setInterval(() => {
      if (heap !== undefined) heap.peak = Math.max(heap.peak, process.memoryUsage().heapUsed);
    }, 20);
    heap = { baseline, peak: baseline, timer };
    return null;
  },
  heapStop() {
    if (heap === undefined) return null;
    clearInterval(heap.timer);
    return { baseline: heap.baseline, peak: Math.max(heap.peak, process.memoryUsage().heapUsed) };
  },
  stats({ runId }) {
    return { ...router.stats(), run: runId === undefined ? undefined : router.clientCount(String(runId)) };
  },
  /** The ids of `runId`'s log after `after`. */
  ids({ runId, after }) {
    const page = source.readLog({ runId: String(runId), after: String(after), limit: 1_000_000 });
    return page !== undefined && "envelopes" in page ? page.envelopes.map((e) => e.id) : null;
  },
  async close() {
    clearInterval(ticker);
    if (heap !== undefined) clearInterval(heap.timer);
    meter?.stop();
    await router.close();
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    return null;
  },
};

process.on("message", async ({ id, op, args }: Request) => {
  try {
    const result = await ops[op]?.(args);
    process.send?.({ id, result: result ?? null });
  } catch (error) {
    process.send?.({ id, error: error instanceof Error ? error.message : String(error) });
  }
});
process.send?.({ ready: true });
