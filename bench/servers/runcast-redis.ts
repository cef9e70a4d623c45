import type { IncomingMessage } from "node:http";
import type { Socket } from "node:net";
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
  /** Record when each event reaches the router, and when it is written to each client that came without `Last-Event-ID` (see `DeliveryStamps`). */
  stamps?: boolean;
}

/**
 * Wraps the source's `subscribe` so that each event is stamped as it is handed to the router.
 * Nothing of what the router sends changes: the stamps stay in this process.
 */
function stampReceived(source: RedisRunSource, received: number[]): void {
  const subscribe = source.subscribe.bind(source);
  source.subscribe = (listener, onGap) =>
    subscribe((envelope) => {
      const sent = envelope.type === "event" ? envelope.data.sent : undefined;
      if (typeof sent === "number") received.push(sent, wallClock());
      listener(envelope);
    }, onGap);
}

const SENT = '"sent":';

/** The `sent` of every event in a chunk written to a client (its frames' JSON, as text). */
function sentIn(chunk: unknown): number[] {
  const text = typeof chunk === "string" ? chunk : Buffer.isBuffer(chunk) ? chunk.toString("latin1") : "";
  const found: number[] = [];
  for (let at = text.indexOf(SENT); at >= 0; at = text.indexOf(SENT, at + SENT.length)) {
    let end = at + SENT.length;
    while (end < text.length) {
      const c = text.charCodeAt(end);
      if ((c < 48 || c > 57) && c !== 46) break;
      end++;
    }
    found.push(Number(text.slice(at + SENT.length, end)));
  }
  return found;
}

/**
 * Wraps one client's socket `write` (which the router's writes reach, directly or through the
 * response) to stamp each event written to it as the write is called: the write itself hands
 * the bytes to the kernel (unless the socket is backed up), which may wake the client on the
 * other core before it returns.
 */
function stampWritten(socket: Socket, written: number[]): void {
  const port = socket.remotePort;
  if (port === undefined) return;
  const write = socket.write as (...args: unknown[]) => boolean;
  socket.write = ((...args: unknown[]): boolean => {
    const at = wallClock();
    for (const sent of sentIn(args[0])) written.push(sent, port, at);
    return write.apply(socket, args);
  }) as Socket["write"];
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
  const stamps: DeliveryStamps = { received: [], written: [] };
  // Before the router subscribes, which it does as it is made.
  if (options.stamps === true) stampReceived(source, stamps.received);
  const router = sseRouter(source, options.router);
  const { server, responses } = expressServer(router);
  if (options.stamps === true) {
    server.on("request", (req: IncomingMessage) => {
      if (req.headers["last-event-id"] === undefined) stampWritten(req.socket, stamps.written);
    });
  }
  let pending = 0;
  const settled = (): void => {
    pending--;
  };
  const writerOnly = (): void => {
    if (role !== "writer") throw new Error("only the writer process records events");
  };
  return {
    server,
    responses,
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
