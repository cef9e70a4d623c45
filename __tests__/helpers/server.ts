import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import express, { type NextFunction, type Request, type Response } from "express";
import { type RunEventSource, type SseRouter, type SseRouterOptions, sseRouter } from "../../lib/index";

/** A real listening Express server with runcast mounted. */
export interface TestServer {
  url: string;
  router: SseRouter;
  server: Server;
  app: express.Express;
  /** Closes the router, then the server; resolves when the server is closed. */
  close(): Promise<void>;
}

/**
 * Starts Express on 127.0.0.1 with an ephemeral port and `sseRouter(source, options)`
 * mounted (after `before`, for middleware a test wants in front).
 */
export async function serve(
  source: RunEventSource,
  options: SseRouterOptions = {},
  before?: (app: express.Express) => void,
): Promise<TestServer> {
  const app = express();
  before?.(app);
  const router = sseRouter(source, { onError: () => {}, ...options });
  app.use(router);
  const server = await new Promise<Server>((resolve) => {
    const s = app.listen(0, "127.0.0.1", () => resolve(s));
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    router,
    server,
    app,
    close: async () => {
      await router.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Resolves when `check()` holds, polling on each turn of the event loop; rejects after `timeoutMs`. */
export function eventually(check: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  return new Promise((resolve, reject) => {
    const poll = (): void => {
      if (check()) resolve();
      else if (Date.now() > deadline) reject(new Error(`timed out waiting for ${what}`));
      else setTimeout(poll, 5);
    };
    poll();
  });
}

/** Settles like `work`, or rejects with `what` after `timeoutMs`; the timer never outlives it. */
export function within<T>(work: Promise<T>, what: string, timeoutMs = 5000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)), timeoutMs);
  });
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}

/**
 * Middleware that makes `res.end` throw `failure` for requests with a `broken` query parameter,
 * as a buggy middleware's wrapper of `res.end` would.
 */
export function breakResEnd(failure: Error): (req: Request, res: Response, next: NextFunction) => void {
  return (req, res, next) => {
    if (req.query.broken !== undefined) {
      res.end = (() => {
        throw failure;
      }) as unknown as Response["end"];
    }
    next();
  };
}
