import { createServer, type ServerResponse } from "node:http";
import express from "express";
import { handWrittenLoop, track } from "./shared";
import type { Fanout } from "./types";

/**
 * The hand-written loop of `handwritten.ts` as an Express 5 route, and nothing else: what
 * Express itself costs a fan-out, per connection and per write. Not run by default.
 */
export function createFanout(): Fanout {
  const loop = handWrittenLoop();
  const responses: ServerResponse[] = [];
  const app = express();
  app.get("/stream", (_req, res) => {
    track(responses, res);
    loop.accept(res);
  });
  return { server: createServer(app), responses, publish: loop.publish, clients: loop.count, cutOffs: () => 0 };
}
