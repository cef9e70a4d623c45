import { Redis } from "ioredis";
import { sseRouter } from "../../lib/index";
import { RedisRunSource, type RedisRunSourceOptions } from "../../lib/redis";
import { type BenchEvent, type DeliveryStamps, RUN_ID, wallClock } from "../protocol";
import { expressServer } from "./shared";
import type { Fanout } from "./types";

/** How this process takes part: `writer` also records the events (and creates the run), `reader` only serves. */
export type RedisRole = "writer" | "reader";

/**
 * What a phase may change of the defaults (the storm phase sizes the history): `url` (else
 * `REDIS_URL`), `historySize`, and source options that only some versions of the source
 * have (such as `maxRunLogSize`), passed through as they are; router options likewise
 * (`resumeCacheBytes`); `run: false` skips creating the fan-out's run.
 */
export interface RedisBenchOptions {
  url?: string;
  run?: boolean;
  source?: Record<string, number>;
  /** Router options (such as `resumeCacheBytes`), passed through as they are. */
  router?: Record<string, number>;
  /** Record when each event reaches the router and when the router is done with it (see `DeliveryStamps`). */
  stamps?: boolean;
}

/**
 * Wraps the source's `subscribe` so that each event handed to the router is stamped on its
 * way in and out. Nothing of what the router sends changes: the stamps stay in this process.
 */
function stampDeliveries(source: RedisRunSource, stamps: DeliveryStamps): void {
  const subscribe = source.subscribe.bind(source);
  source.subscribe = (listener, onGap) =>
    subscribe((envelope) => {
      const gotAt = wallClock();
      listener(envelope);
      const sent = envelope.type === "event" ? envelope.data.sent : undefined;
      if (typeof sent === "number") stamps.push(sent, gotAt, wallClock());
    }, onGap);
}

/**
 * runcast scaled out: `sseRouter(new RedisRunSource({ url, prefix }))` in Express 5,
 * defaults throughout. The benchmark runs two of these processes on one prefix; the writer
 * records every event through `recordEvent`, and both deliver what they read back from Redis.
 *
 * Writes are pipelined: `publish` does not await `recordEvent` (ioredis sends commands of one
 * connection in order, so events keep their order); `pending()` lets the blast governor bound
 * how many are unanswered.
 *
 * The writer's connections are named `<prefix>:writer` (the source names a reader's
 * `<prefix>:commands` and `<prefix>:reader`), so Redis's SLOWLOG tells their work apart.
 */
export async function createFanout(prefix: string, role: RedisRole, options: RedisBenchOptions = {}): Promise<Fanout> {
  const url = options.url ?? process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
  let failures = 0;
  // Never connected itself: the source duplicates it (name included) for its own connections.
  const named =
    role === "writer" ? new Redis(url, { lazyConnect: true, connectionName: `${prefix}:writer` }) : undefined;
  const sourceOptions: RedisRunSourceOptions = {
    ...options.source,
    ...(named === undefined ? { url } : { redis: named }),
    prefix,
    onError: (error, context) => console.error(`runcast-redis ${role}: ${error.message} (${context.phase})`),
  };
  const source = new RedisRunSource(sourceOptions);
  if (role === "writer" && options.run !== false) {
    await source.createRun({ id: RUN_ID, status: "running", total_units: 1000 });
  }
  const stamps: DeliveryStamps = [];
  // Before the router subscribes, which it does as it is made.
  if (options.stamps === true) stampDeliveries(source, stamps);
  const router = sseRouter(source, options.router);
  let pending = 0;
  const settled = (): void => {
    pending--;
  };
  const writerOnly = (): void => {
    if (role !== "writer") throw new Error("only the writer process records events");
  };
  return {
    ...expressServer(router),
    publish(event: BenchEvent): void {
      writerOnly();
      pending++;
      source.recordEvent(RUN_ID, event).then(settled, (error: unknown) => {
        // A lost event also shows as a client short of events in the load process.
        failures++;
        settled();
        if (failures <= 3) console.error(`runcast-redis: recordEvent failed: ${String(error)}`);
      });
    },
    pending: () => pending,
    close: (drainMs) => router.close({ drainMs }),
    clients: () => router.clientCount(),
    cutOffs: () => router.stats().slowClientsCutOff,
    ...(options.stamps === true ? { stamps } : {}),
    runs: {
      async createRun(runId) {
        writerOnly();
        await source.createRun({ id: runId, status: "running", total_units: 1000 });
      },
      async recordEvent(runId, event) {
        writerOnly();
        await source.recordEvent(runId, event);
      },
    },
  };
}
