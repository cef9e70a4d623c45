import session from "express-session";
import { MemoryRunSource, type RunEventSource } from "../../lib/index";
import type { ErrorContext } from "../../lib/options";
import { breakResEnd, serve, type TestServer, within } from "../helpers/server";
import { SseStream } from "../helpers/sse";

/**
 * `router.close()` behind middleware that wraps `res.end`, as express-session does (it takes
 * a function passed to `res.end` for a body), on Express 4 and 5 (the jest projects).
 */
describe("close() behind middleware that wraps res.end", () => {
  let source: MemoryRunSource;
  let t: TestServer;
  let errors: { error: unknown; context: ErrorContext }[];

  beforeEach(() => {
    source = new MemoryRunSource();
    errors = [];
    for (const id of ["a", "b", "c"]) source.createRun({ id });
  });
  afterEach(async () => {
    await t.close();
  });

  async function openStreams(): Promise<SseStream[]> {
    const streams = await Promise.all(
      ["/api/runs/a/stream", "/api/runs/b/stream", "/api/stream", "/api/runs/c/stream?broken=1"].map((path) =>
        SseStream.open(`${t.url}${path}`),
      ),
    );
    await Promise.all(streams.map((s) => s.frameCount(1)));
    return streams;
  }

  it("with express-session (saveUninitialized: true) ends every stream and resolves", async () => {
    t = await serve(
      source,
      { heartbeatMs: 60_000, onError: (error, context) => errors.push({ error, context }) },
      (app) => app.use(session({ secret: "test secret", resave: false, saveUninitialized: true })),
    );
    const streams = await openStreams();
    await within(t.router.close(), "router.close()");
    await Promise.all(streams.map((s) => s.end()));
    expect(t.router.clientCount()).toBe(0);
    expect(errors).toEqual([]);
    // Nothing holds the server up: it closes without closeAllConnections.
    await within(
      new Promise<void>((resolve, reject) => t.server.close((err) => (err ? reject(err) : resolve()))),
      "server.close()",
    );
  });

  it("ends every other stream when ending one throws, and reports the throw through onError", async () => {
    const failure = new Error("res.end wrapper failed");
    t = await serve(
      source,
      { heartbeatMs: 60_000, onError: (error, context) => errors.push({ error, context }) },
      (app) => app.use(breakResEnd(failure)),
    );
    const streams = await openStreams();
    await within(t.router.close(), "router.close()");
    await Promise.all(streams.map((s) => s.end()));
    expect(t.router.clientCount()).toBe(0);
    expect(errors).toEqual([{ error: failure, context: { phase: "close", runId: "c" } }]);
  });

  it("ends every stream and reports it when the source's unsubscribe throws", async () => {
    const failure = new Error("unsubscribe failed");
    // An adapter whose unsubscribe breaks, as a hand-written one's might.
    const adapter: RunEventSource = {
      getRun: (runId) => source.getRun(runId),
      listRuns: () => source.listRuns(),
      snapshot: (runId) => source.snapshot(runId),
      subscribe: (listener) => {
        const stop = source.subscribe(listener);
        return () => {
          stop();
          throw failure;
        };
      },
    };
    t = await serve(adapter, { heartbeatMs: 60_000, onError: (error, context) => errors.push({ error, context }) });
    const streams = await Promise.all(
      ["/api/runs/a/stream", "/api/stream"].map((path) => SseStream.open(`${t.url}${path}`)),
    );
    await Promise.all(streams.map((s) => s.frameCount(1)));
    await within(t.router.close(), "router.close()");
    await Promise.all(streams.map((s) => s.end()));
    expect(errors).toEqual([{ error: failure, context: { phase: "close" } }]);
  });
});
