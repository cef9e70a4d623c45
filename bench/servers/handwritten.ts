import { createServer, type ServerResponse } from "node:http";
import { handWrittenLoop, track } from "./shared";
import type { Fanout } from "./types";

/**
 * The baseline: an ordinary hand-written `node:http` SSE fan-out. It keeps an array of
 * responses and writes one pre-serialized string per event to each of them.
 */
export function createFanout(): Fanout {
  const loop = handWrittenLoop();
  const responses: ServerResponse[] = [];
  const server = createServer((req, res) => {
    if (req.method !== "GET" || req.url !== "/stream") {
      res.writeHead(404).end();
      return;
    }
    track(responses, res);
    loop.accept(res);
  });
  return { server, responses, publish: loop.publish, clients: loop.count, cutOffs: () => 0 };
}
