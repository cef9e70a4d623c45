import http from "node:http";
import { MemoryRunSource } from "../../lib/index";
import { eventually, serve, type TestServer } from "../helpers/server";
import { SseStream } from "../helpers/sse";

function activeTimers(): number {
  return process.getActiveResourcesInfo().filter((r) => r === "Timeout" || r === "Immediate").length;
}

describe("client lifecycle", () => {
  let source: MemoryRunSource;
  let t: TestServer;

  beforeEach(async () => {
    source = new MemoryRunSource();
    t = await serve(source, { heartbeatMs: 60_000 });
  });
  afterEach(() => t.close());

  it("forgets a client that disconnects: counts drop to 0 and frames keep flowing to the others", async () => {
    source.createRun({ id: "r" });
    const leaving = await SseStream.open(`${t.url}/api/runs/r/stream`);
    const staying = await SseStream.open(`${t.url}/api/runs/r/stream`);
    await Promise.all([leaving.frameCount(1), staying.frameCount(1)]);
    expect(t.router.clientCount("r")).toBe(2);
    leaving.close();
    await eventually(() => t.router.clientCount("r") === 1, "the count to drop to 1");
    source.recordEvent("r", { type: "unit.started" });
    await staying.frameCount(2);
    staying.close();
    await eventually(() => t.router.clientCount() === 0, "the count to drop to 0");
    expect(t.router.stats().channels).toBe(0);
  });

  it("leaves no channels, timers or listeners behind after 1,000 connect/disconnect cycles", async () => {
    source.createRun({ id: "r" });
    const timersBefore = activeTimers();
    const listenersBefore = t.server.listenerCount("connection") + t.server.listenerCount("request");
    for (let batch = 0; batch < 20; batch++) {
      const streams = await Promise.all(
        [...Array(50)].map((_, i) => SseStream.open(`${t.url}/api/${i % 5 === 0 ? "stream" : "runs/r/stream"}`)),
      );
      await Promise.all(streams.map((s) => s.frameCount(1)));
      for (const s of streams) s.close();
      await eventually(() => t.router.clientCount() === 0, "every client to be forgotten");
    }
    expect(t.router.stats().channels).toBe(0);
    // One leaked timer per client would show as hundreds here.
    expect(activeTimers()).toBeLessThanOrEqual(timersBefore);
    expect(t.server.listenerCount("connection") + t.server.listenerCount("request")).toBe(listenersBefore);
    // The source still has exactly one subscriber: the router's.
    source.recordEvent("r", { type: "unit.started" });
    const last = await SseStream.open(`${t.url}/api/runs/r/stream`);
    await last.frameCount(1);
    last.close();
  }, 60_000);

  it("close() ends every stream, refuses new ones with 503 unavailable, and lets the server close at once", async () => {
    source.createRun({ id: "r" });
    const streams = await Promise.all([
      SseStream.open(`${t.url}/api/runs/r/stream`),
      SseStream.open(`${t.url}/api/stream`),
    ]);
    await Promise.all(streams.map((s) => s.frameCount(1)));
    await t.router.close();
    await Promise.all(streams.map((s) => s.end()));
    expect(t.router.clientCount()).toBe(0);
    const refused = await new Promise<{ status: number; body: string }>((resolve) => {
      http.get(`${t.url}/api/runs/r/stream`, { agent: false }, (res) => {
        let body = "";
        res.on("data", (d) => {
          body += d;
        });
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
      });
    });
    expect(refused.status).toBe(503);
    expect(JSON.parse(refused.body).error.code).toBe("unavailable");
    // No closeAllConnections: the server must close on its own now.
    await new Promise<void>((resolve, reject) => t.server.close((err) => (err ? reject(err) : resolve())));
    // Recording after close reaches nobody and throws nothing.
    source.recordEvent("r", { type: "unit.started" });
  });
});
