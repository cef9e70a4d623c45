/**
 * The dashboard: Express serving runcast's streams over the BullMQ queue (each needs a stream
 * token), the example's page (examples/public), `POST /api/stream-token` (a token for the
 * page), `GET /api/runs` (recent runs) and `POST /api/runs` (start a deploy).
 */
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import path from "node:path";
import express from "express";
// In your app: import { BullMQRunSource } from "runcast/bullmq"; import { sseRouter } from "runcast";
import type { BullMQRunSource } from "../../lib/bullmq/index";
import { isTerminalStatus, type RunState, type SseRouter, sseRouter } from "../../lib/index";
import { CLIENT_BUNDLE } from "../app";
import { checkedLifetime, DEFAULT_TOKEN_LIFETIME_SECONDS, streamTokenEndpoint } from "../stream-token";
import type { Producer } from "./producer";

/** Options of {@link createDashboard}. */
export interface DashboardOptions {
  /** The secret stream tokens are signed with (at least 32 bytes). @default 32 random bytes */
  tokenSecret?: string | Uint8Array;
  /** How long a token from `POST /api/stream-token` is valid, in seconds. @default 300 */
  tokenLifetimeSeconds?: number;
}

export interface Dashboard {
  app: express.Express;
  source: BullMQRunSource;
  router: SseRouter;
  close(): Promise<void>;
}

export function createDashboard(
  source: BullMQRunSource,
  producer: Producer,
  options: DashboardOptions = {},
): Dashboard {
  const secret = options.tokenSecret ?? randomBytes(32);
  const lifetime = checkedLifetime(options.tokenLifetimeSeconds ?? DEFAULT_TOKEN_LIFETIME_SECONDS);
  const router = sseRouter(source, { retryMs: 1_000, tokens: { secret } });
  // The newest runs, for the page's list (the global stream announces only active runs).
  const recent = new Map<string, RunState>();
  const unsubscribe = source.subscribe((envelope) => {
    if (envelope.type === "event") return;
    recent.delete(envelope.runId);
    recent.set(envelope.runId, envelope.data);
    for (const [id, state] of recent) {
      if (recent.size <= 50) break;
      if (isTerminalStatus(state.status)) recent.delete(id);
    }
  });

  const app = express();
  app.disable("x-powered-by");
  app.use(router);
  // The page's token for its streams. BullMQ jobs carry no tags, so the token covers every
  // run (an empty scope); a real app would scope it from its session, e.g. to the user's own
  // jobs with `runs`, or to tags its runs carry.
  app.post(
    "/api/stream-token",
    streamTokenEndpoint(secret, lifetime, () => ({})),
  );
  app.get("/api/runs", (_req, res) => {
    res.json({ runs: [...recent.values()].reverse() });
  });
  app.post("/api/runs", async (_req, res) => {
    const id = await producer.startDeploy();
    res.status(201).json({ run: { id, status: "pending", completed_units: 0 } });
  });
  app.get("/runcast/client.js", (_req, res) => {
    if (!existsSync(CLIENT_BUNDLE)) {
      res.status(503).type("text/plain").send("dist/client.browser.mjs is missing: run `npm run build`");
      return;
    }
    res.type("text/javascript").sendFile(CLIENT_BUNDLE);
  });
  app.use(express.static(path.join(__dirname, "..", "public")));
  return {
    app,
    source,
    router,
    close: async () => {
      unsubscribe();
      await router.close();
    },
  };
}
