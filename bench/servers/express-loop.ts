import { createServer, type ServerResponse } from "node:http";
import express from "express";
import type { BenchEvent } from "../protocol";
import type { Fanout } from "./types";

/**
 * The hand-written loop of `handwritten.ts` as an Express 5 route, and nothing else: what
 * Express itself costs a fan-out, per connection and per write. Not run by default.
 */
export function createFanout(): Fanout {
  const clients: ServerResponse[] = [];
  const responses: ServerResponse[] = [];
  const app = express();
  app.get("/stream", (_req, res) => {
    res.writeHead(200, {
      "Content-Type": "text/event-stream",
      "Cache-Control": "no-cache, no-transform",
      "X-Accel-Buffering": "no",
    });
    res.write("retry: 3000\n\n");
    clients.push(res);
    responses.push(res);
    res.on("close", () => {
      const i = clients.indexOf(res);
      if (i >= 0) clients.splice(i, 1);
    });
  });
  return {
    server: createServer(app),
    responses,
    publish(event: BenchEvent): void {
      const frame = `event: event\nid: ${event.seq}\ndata: ${JSON.stringify(event)}\n\n`;
      for (const res of clients) res.write(frame);
    },
    clients: () => clients.length,
    cutOffs: () => 0,
  };
}
