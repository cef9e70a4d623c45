/**
 * The dashboard: Express serving runcast's streams over the BullMQ queue, the example's page
 * (examples/public), `GET /api/runs` (recent runs) and `POST /api/runs` (start a deploy).
 */
import { existsSync } from "node:fs";
import path from "node:path";
import express from "express";
// In your app: import { BullMQRunSource } from "runcast/bullmq"; import { sseRouter } from "runcast";
import type { BullMQRunSource } from "../../lib/bullmq/index";
import { isTerminalStatus, type RunState, type SseRouter, sseRouter } from "../../lib/index";
import { CLIENT_BUNDLE } from "../app";
import type { Producer } from "./producer";

export interface Dashboard {
  app: express.Express;
  source: BullMQRunSource;
  router: SseRouter;
  close(): Promise<void>;
}

export function createDashboard(source: BullMQRunSource, producer: Producer): Dashboard {
  const router = sseRouter(source, { retryMs: 1_000 });
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
