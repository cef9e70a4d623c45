import { sseRouter } from "../../lib/index";
import { RedisRunSource } from "../../lib/redis";
import { type BenchEvent, RUN_ID } from "../protocol";
import { expressServer } from "./shared";
import type { Fanout } from "./types";

/** How this process takes part: `writer` also records the events (and creates the run), `reader` only serves. */
export type RedisRole = "writer" | "reader";

/**
 * runcast scaled out: `sseRouter(new RedisRunSource({ url, prefix }))` in Express 5,
 * defaults throughout. The benchmark runs two of these processes on one prefix; the writer
 * records every event through `recordEvent`, and both deliver what they read back from Redis.
 *
 * Writes are pipelined: `publish` does not await `recordEvent` (ioredis sends commands of one
 * connection in order, so events keep their order); `pending()` lets the blast governor bound
 * how many are unanswered.
 */
export async function createFanout(prefix: string, role: RedisRole): Promise<Fanout> {
  const url = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
  let failures = 0;
  const source = new RedisRunSource({
    url,
    prefix,
    onError: (error, context) => console.error(`runcast-redis ${role}: ${error.message} (${context.phase})`),
  });
  if (role === "writer") await source.createRun({ id: RUN_ID, status: "running", total_units: 1000 });
  const router = sseRouter(source);
  let pending = 0;
  const settled = (): void => {
    pending--;
  };
  return {
    ...expressServer(router),
    publish(event: BenchEvent): void {
      if (role !== "writer") throw new Error("only the writer process records events");
      pending++;
      source.recordEvent(RUN_ID, event).then(settled, (error: unknown) => {
        // A lost event also shows as a client short of events in the load process.
        failures++;
        settled();
        if (failures <= 3) console.error(`runcast-redis: recordEvent failed: ${String(error)}`);
      });
    },
    pending: () => pending,
    clients: () => router.clientCount(),
    cutOffs: () => router.stats().slowClientsCutOff,
  };
}
