/**
 * A server process of the benchmark: `node bench/server.ts <kind>` (for `runcast-redis`:
 * `<kind> <prefix> <writer|reader>`, Redis at `REDIS_URL`). Listens on 127.0.0.1, reports
 * its port, then broadcasts when the orchestrator asks.
 */
import type { ServerResponse } from "node:http";
import { answerRequests } from "./children";
import { sampleProcess } from "./process-sample";
import {
  benchEvent,
  type ListeningMessage,
  SERVER_KINDS,
  type ServerKind,
  type ServerReplies,
  type ServerRequest,
  wallClock,
} from "./protocol";
import { RunsWriter } from "./servers/runs-writer";
import type { Fanout } from "./servers/types";

/** How many responses the load governor looks at per tick. */
const GOVERNOR_SAMPLES = 64;
/** Unacknowledged broadcasts (Redis writes in flight) a blast may have before it waits. */
const MAX_PENDING = 512;

async function load(kind: ServerKind, args: readonly string[]): Promise<Fanout> {
  // Loaded on demand so each process only holds the server it runs.
  switch (kind) {
    case "handwritten":
      return (require("./servers/handwritten") as typeof import("./servers/handwritten")).createFanout();
    case "runcast":
      return (require("./servers/runcast") as typeof import("./servers/runcast")).createFanout();
    case "better-sse":
      return (require("./servers/better-sse") as typeof import("./servers/better-sse")).createFanout();
    case "express-loop":
      return (require("./servers/express-loop") as typeof import("./servers/express-loop")).createFanout();
    case "runcast-redis": {
      const [prefix, role, options] = args;
      if (prefix === undefined || (role !== "writer" && role !== "reader")) {
        throw new Error("runcast-redis takes <prefix> <writer|reader> [options JSON]");
      }
      const redis = require("./servers/runcast-redis") as typeof import("./servers/runcast-redis");
      return redis.createFanout(prefix, role, options === undefined ? {} : JSON.parse(options));
    }
    case "runcast-global":
    case "runcast-scoped":
    case "runcast-scoped-even": {
      const [secret] = args;
      if (secret === undefined) throw new Error(`${kind} takes <token secret>`);
      return (require("./servers/runcast-tags") as typeof import("./servers/runcast-tags")).createFanout(secret);
    }
  }
}

/**
 * Whether the clients keep up: none of an evenly spread sample of responses holds more
 * than `limit` unsent bytes. The same check throttles every server, so a blast measures
 * what each one delivers without growing its buffers without bound.
 */
function keepingUp(responses: readonly ServerResponse[], limit: number): boolean {
  const stride = Math.max(1, Math.floor(responses.length / GOVERNOR_SAMPLES));
  for (let i = 0; i < responses.length; i += stride) {
    const res = responses[i] as ServerResponse;
    if (!res.destroyed && res.writableLength > limit) return false;
  }
  return true;
}

function collectGarbage(): void {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc === undefined) throw new Error("run the server with --expose-gc");
  for (let i = 0; i < 4; i++) gc();
}

async function main(): Promise<void> {
  const kind = process.argv[2] as ServerKind;
  if (!SERVER_KINDS.includes(kind)) throw new Error(`unknown server ${kind}`);
  const fanout = await load(kind, process.argv.slice(3));
  const batch = fanout.batch ?? 1;
  let seq = 0;
  let runsWriter: RunsWriter | undefined;
  const writer = (): RunsWriter => {
    if (fanout.runs === undefined) throw new Error(`${kind} cannot record into runs of its own`);
    runsWriter ??= new RunsWriter(fanout.runs);
    return runsWriter;
  };

  const handlers: {
    [K in ServerRequest["cmd"]]: (req: Extract<ServerRequest, { cmd: K }>) => Promise<ServerReplies[K]>;
  } = {
    memory: async () => {
      // Let pending writes and timers settle before measuring.
      await new Promise((resolve) => setTimeout(resolve, 100));
      collectGarbage();
      const { rss, heapUsed } = process.memoryUsage();
      return { rss, heapUsed };
    },
    blast: ({ k, durationMs, governorBytes }) =>
      new Promise((resolve) => {
        const startedAt = wallClock();
        const cpu = process.cpuUsage();
        const until = startedAt + durationMs;
        let broadcasts = 0;
        const tick = (): void => {
          if (wallClock() >= until && broadcasts % batch === 0) {
            const used = process.cpuUsage(cpu);
            resolve({ broadcasts, startedAt, endedAt: wallClock(), cpuMs: (used.user + used.system) / 1000 });
            return;
          }
          if (!keepingUp(fanout.responses, governorBytes) || (fanout.pending?.() ?? 0) > MAX_PENDING) {
            // Sleep rather than spin: on two cores a spinning server takes CPU from the clients.
            setTimeout(tick, 1);
            return;
          }
          // Past the end, only what completes the last batch.
          const n = wallClock() >= until ? Math.min(k, batch - (broadcasts % batch)) : k;
          for (let i = 0; i < n; i++) fanout.publish(benchEvent(++seq));
          broadcasts += n;
          setImmediate(tick);
        };
        setImmediate(tick);
      }),
    paced: ({ count: asked, intervalMs, perStep = 1 }) =>
      new Promise((resolve) => {
        const count = Math.ceil(asked / batch) * batch;
        const step = Math.max(1, perStep);
        const startedAt = wallClock();
        let broadcasts = 0;
        let steps = 0;
        const next = (): void => {
          const n = Math.min(step, count - broadcasts);
          for (let i = 0; i < n; i++) fanout.publish(benchEvent(++seq));
          broadcasts += n;
          steps++;
          if (broadcasts >= count) {
            resolve({ broadcasts });
            return;
          }
          setTimeout(next, Math.max(0, startedAt + steps * intervalMs - wallClock()));
        };
        next();
      }),
    stats: async () => ({ clients: fanout.clients(), cutOffs: fanout.cutOffs() }),
    cpu: async () => {
      const used = process.cpuUsage();
      return { ms: (used.user + used.system) / 1000 };
    },
    "runs-create": async ({ runs }) => {
      await writer().create(runs);
      return {};
    },
    "runs-record": ({ perRun }) => writer().record(perRun),
    "runs-flow": ({ perSecond }) => writer().flow(perSecond),
    close: async ({ drainMs }) => {
      if (fanout.close === undefined) throw new Error(`${kind} cannot close its streams on request`);
      await fanout.close(drainMs);
      return { closedAt: wallClock() };
    },
    arrivals: async ({ since }) => ({ times: arrivals.filter((t) => t >= since) }),
    sample: async ({ loopDelay }) => sampleProcess(loopDelay),
    stamps: async ({ since }) => {
      // Records of `width` numbers, the first of each an event's `sent`.
      const from = (all: readonly number[], width: number): number[] => {
        const kept: number[] = [];
        for (let i = 0; i < all.length; i += width) {
          if ((all[i] as number) >= since) kept.push(...all.slice(i, i + width));
        }
        return kept;
      };
      return { received: from(fanout.stamps?.received ?? [], 2), written: from(fanout.stamps?.written ?? [], 3) };
    },
  };

  answerRequests<ServerRequest>(handlers);
  // Every request's arrival, for the deploy phase's reconnect rate (a number per request: cheap).
  const arrivals: number[] = [];
  fanout.server.on("request", () => arrivals.push(wallClock()));

  fanout.server.listen({ host: "127.0.0.1", port: 0, backlog: 4096 }, () => {
    const address = fanout.server.address();
    const port = typeof address === "object" && address !== null ? address.port : 0;
    process.send?.({ listening: port } satisfies ListeningMessage);
  });
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
