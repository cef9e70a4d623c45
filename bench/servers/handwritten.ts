import { createServer, type ServerResponse } from "node:http";
import type { BenchEvent } from "../protocol";
import type { Fanout } from "./types";

/**
 * The baseline: an ordinary hand-written `node:http` SSE fan-out. It keeps an array of
 * responses and writes one pre-serialized string per event to each of them.
 */
export function createFanout(): Fanout {
  const clients: ServerResponse[] = [];
  const responses: ServerResponse[] = [];
  const server = createServer((req, res) => {
    if (req.method !== "GET" || req.url !== "/stream") {
      res.writeHead(404).end();
      return;
    }
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
    server,
    responses,
    publish(event: BenchEvent): void {
      const frame = `event: event\nid: ${event.seq}\ndata: ${JSON.stringify(event)}\n\n`;
      for (const res of clients) res.write(frame);
    },
    clients: () => clients.length,
    cutOffs: () => 0,
  };
}
