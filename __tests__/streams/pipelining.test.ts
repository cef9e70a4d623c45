import { MemoryRunSource } from "../../lib/index";
import { RawConnection } from "../helpers/raw";
import { eventually, serve, type TestServer, within } from "../helpers/server";
import { SseStream } from "../helpers/sse";

describe("pipelined stream requests", () => {
  let source: MemoryRunSource;
  let t: TestServer;

  beforeEach(() => {
    source = new MemoryRunSource();
    source.createRun({ id: "r" });
  });
  afterEach(() => t.close());

  it("requests pipelined behind a live stream leave with their connection: no leaked clients, maxClients still serves, close() resolves", async () => {
    t = await serve(source, { heartbeatMs: 60_000, maxClients: 30 });
    const connections = await Promise.all([...Array(20)].map(() => RawConnection.open(t.url)));
    connections.forEach((c, i) => {
      c.pipeline(i % 2 === 0 ? "/api/stream" : "/api/runs/r/stream", 3);
    });
    await Promise.all(connections.map((c) => c.receivedText("event: state")));
    // Only the request being answered on each connection is a client; the two behind it wait their turn.
    expect(t.router.clientCount()).toBe(20);
    source.recordEvent("r", { type: "unit.started" });
    await Promise.all(connections.map((c) => c.receivedText("event: event")));
    for (const c of connections) c.destroy();
    await eventually(() => t.router.clientCount() === 0, "every client to leave");
    expect(t.router.stats().channels).toBe(0);

    // maxClients counts live clients only: a real client is served.
    const real = await SseStream.open(`${t.url}/api/runs/r/stream`);
    expect(real.status).toBe(200);
    await real.frameCount(1);
    source.recordEvent("r", { type: "unit.finished" });
    await real.frameCount(2);
    real.close();
    await eventually(() => t.router.clientCount() === 0, "the real client to leave");
    await within(t.router.close(), "router.close()");
  });

  it("close() resolves while requests wait behind live streams", async () => {
    t = await serve(source, { heartbeatMs: 60_000 });
    const connections = await Promise.all([...Array(5)].map(() => RawConnection.open(t.url)));
    for (const c of connections) c.pipeline("/api/runs/r/stream", 3);
    await Promise.all(connections.map((c) => c.receivedText("event: state")));
    await within(t.router.close(), "router.close()");
    // Each live stream ends; the two requests behind it then get their turn and are refused.
    await Promise.all(
      connections.map((c) =>
        eventually(() => c.received.split('"code":"unavailable"').length === 3, "two 503 unavailable answers"),
      ),
    );
    expect(t.router.clientCount()).toBe(0);
    for (const c of connections) c.destroy();
  });

  it("a request pipelined behind a stream is served on the same connection once that stream ends", async () => {
    t = await serve(source, { heartbeatMs: 60_000 });
    const conn = await RawConnection.open(t.url);
    conn.pipeline("/api/runs/r/stream", 2);
    await conn.receivedText("event: state");
    expect(t.router.clientCount("r")).toBe(1);
    source.completeRun("r", { status: "completed" });
    // The first stream ends with `complete`; the second then answers for the finished run: state, complete, end.
    await eventually(() => conn.received.split("event: complete").length === 3, "both streams to complete");
    expect(conn.received.match(/HTTP\/1\.1 200 OK/g)).toHaveLength(2);
    await eventually(() => t.router.clientCount() === 0, "both clients to leave");
    conn.destroy();
  });

  it("a pipelined request behind a stream answers its error once it is its turn", async () => {
    t = await serve(source, { heartbeatMs: 60_000 });
    const conn = await RawConnection.open(t.url);
    conn.pipeline("/api/runs/r/stream", 1);
    conn.pipeline("/api/runs/nope/stream", 1);
    await conn.receivedText("event: state");
    expect(conn.received).not.toContain("run_not_found");
    source.completeRun("r", { status: "completed" });
    await conn.receivedText('"code":"run_not_found"');
    expect(t.router.clientCount()).toBe(0);
    conn.destroy();
  });
});
