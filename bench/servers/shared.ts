import { createServer, type Server, type ServerResponse } from "node:http";
import express from "express";
import type { BenchEvent } from "../protocol";

/**
 * The hand-written fan-out loop: an array of responses, one pre-serialized string written to
 * each per event. `handwritten.ts` serves it from `node:http`, `express-loop.ts` from an
 * Express route, so the two differ by Express alone.
 */
export function handWrittenLoop(): {
  accept(res: ServerResponse): void;
  publish(event: BenchEvent): void;
  count(): number;
} {
  const clients: ServerResponse[] = [];
  return {
    accept(res) {
      res.writeHead(200, {
        "Content-Type": "text/event-stream",
        "Cache-Control": "no-cache, no-transform",
        "X-Accel-Buffering": "no",
      });
      res.write("retry: 3000\n\n");
      clients.push(res);
      res.on("close", () => {
        const i = clients.indexOf(res);
        if (i >= 0) clients.splice(i, 1);
      });
    },
    publish(event) {
      const frame = `event: event\nid: ${event.seq}\ndata: ${JSON.stringify(event)}\n\n`;
      for (const res of clients) res.write(frame);
    },
    count: () => clients.length,
  };
}

/** Lists `res` in `responses` (what the load governor samples) until it closes. */
export function track(responses: ServerResponse[], res: ServerResponse): void {
  responses.push(res);
  res.once("close", () => {
    const i = responses.indexOf(res);
    if (i >= 0) responses.splice(i, 1);
  });
}

/** An Express 5 app with `router` mounted, as a user mounts runcast; lists every response for the load governor. */
export function expressServer(router: express.RequestHandler): { server: Server; responses: ServerResponse[] } {
  const responses: ServerResponse[] = [];
  const app = express();
  app.use((_req, res, next) => {
    track(responses, res);
    next();
  });
  app.use(router);
  return { server: createServer(app), responses };
}
