import { createServer, type ServerResponse } from "node:http";
import { createChannel, createSession } from "better-sse";
import express from "express";
import type { BenchEvent } from "../protocol";
import { track } from "./shared";
import type { Fanout } from "./types";

/** Plain better-sse as its documentation shows it: a session per request, registered with one channel, behind Express. */
export function createFanout(): Fanout {
  const channel = createChannel();
  const responses: ServerResponse[] = [];
  const app = express();
  app.get("/stream", async (req, res) => {
    track(responses, res);
    const session = await createSession(req, res);
    channel.register(session);
  });
  return {
    server: createServer(app),
    responses,
    publish(event: BenchEvent): void {
      channel.broadcast(event, "event", { eventId: String(event.seq) });
    },
    clients: () => channel.sessionCount,
    cutOffs: () => 0,
  };
}
