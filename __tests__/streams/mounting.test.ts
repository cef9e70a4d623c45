import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import express, { type NextFunction, type Request, type Response } from "express";
import { MemoryRunSource, type SseRouter, sseRouter } from "../../lib/index";
import { SseStream } from "../helpers/sse";

/** Where the streams answer when the router, or its `runs` and `global` parts, are mounted under a path. */
describe("mounting under a path", () => {
  let source: MemoryRunSource;
  let sse: SseRouter;
  let server: Server;
  let url: string;

  async function listen(mount: (app: express.Express) => void): Promise<void> {
    const app = express();
    mount(app);
    server = await new Promise<Server>((resolve) => {
      const s = app.listen(0, "127.0.0.1", () => resolve(s));
    });
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }

  beforeEach(() => {
    source = new MemoryRunSource();
    source.createRun({ id: "r" });
    sse = sseRouter(source, { heartbeatMs: 60_000, onError: () => {} });
  });
  afterEach(async () => {
    await sse.close();
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  async function statusOf(path: string, headers: Record<string, string> = {}): Promise<number> {
    const stream = await SseStream.open(`${url}${path}`, headers);
    stream.close();
    return stream.status;
  }

  /** A login check as a host app would write it. */
  function requireLogin(req: Request, res: Response, next: NextFunction): void {
    if (req.get("authorization") === "Bearer ok") next();
    else res.status(401).json({ error: { code: "login_required", message: "log in first" } });
  }

  it("runs and global mounted at their basePath serve /api/..., not /api/api/...", async () => {
    await listen((app) => {
      // The global stream open to all, each run's stream for logged-in users only.
      app.use("/api", sse.global);
      app.use("/api", requireLogin, sse.runs);
    });
    const run = await SseStream.open(`${url}/api/runs/r/stream`, { authorization: "Bearer ok" });
    await run.frameCount(1);
    expect(run.frames[0]?.json).toMatchObject({ id: "r" });
    run.close();
    expect(await statusOf("/api/runs/r/stream")).toBe(401);
    const all = await SseStream.open(`${url}/api/stream`);
    await all.frameCount(1);
    expect(all.status).toBe(200);
    all.close();
    expect(await statusOf("/api/api/runs/r/stream", { authorization: "Bearer ok" })).toBe(404);
    expect(await statusOf("/api/api/stream", { authorization: "Bearer ok" })).toBe(404);
  });

  it("under any other path the basePath follows it, as before", async () => {
    await listen((app) => app.use("/v2", sse));
    expect(await statusOf("/v2/api/runs/r/stream")).toBe(200);
    expect(await statusOf("/v2/api/stream")).toBe(200);
    expect(await statusOf("/v2/runs/r/stream")).toBe(404);
  });

  it("at the root, only {basePath}/... answers", async () => {
    await listen((app) => app.use(sse));
    expect(await statusOf("/api/runs/r/stream")).toBe(200);
    expect(await statusOf("/runs/r/stream")).toBe(404);
  });
});
