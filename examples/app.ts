/**
 * The example's web app: runcast's streams, a small JSON API, and the dashboard page.
 *
 *   GET  /api/stream              every run, live        (runcast)
 *   GET  /api/runs/:id/stream     one run, live          (runcast)
 *   GET  /api/runs                recent runs, as JSON   (this file)
 *   POST /api/runs                start a run            (this file)
 *   GET  /                        the dashboard          (examples/public)
 *   GET  /runcast/client.js       runcast/client for the page (dist/client.browser.mjs)
 */
import { existsSync } from "node:fs";
import path from "node:path";
import express from "express";
// In your app: import { MemoryRunSource, sseRouter, ... } from "runcast";
import {
  createStreamToken,
  isTerminalStatus,
  MemoryRunSource,
  type RunState,
  type SseRouter,
  type SseRouterOptions,
  sseRouter,
} from "../lib/index";
import { Orchestrator, type OrchestratorOptions, SERVICES } from "./orchestrator";

/**
 * runcast/client as one self-contained ES module (zod inlined), built by `npm run build`.
 * In your app: require.resolve("runcast/client/browser"), or in ESM
 * fileURLToPath(import.meta.resolve("runcast/client/browser")).
 */
export const CLIENT_BUNDLE = path.join(__dirname, "..", "dist", "client.browser.mjs");

/** Options of {@link createExample}. */
export interface ExampleOptions {
  /** The store; a fresh MemoryRunSource by default. */
  source?: MemoryRunSource;
  /** How the simulated daemon behaves. */
  orchestrator?: OrchestratorOptions;
  /** Options of the stream router (the example reconnects browsers after 1 s rather than 3). */
  router?: SseRouterOptions;
  /** How many runs `GET /api/runs` lists. @default 50 */
  recentRuns?: number;
  /**
   * When set, the streams require stream tokens signed with this secret (at least 32 bytes),
   * and `GET /api/stream-token` mints one for the page, as a real app's authenticated endpoint
   * would. @default undefined (open streams)
   */
  tokenSecret?: string;
}

/** Everything the example wires together, for `main.ts` and the tests. */
export interface Example {
  app: express.Express;
  source: MemoryRunSource;
  orchestrator: Orchestrator;
  router: SseRouter;
  /** Stops the daemon and ends every stream; then close the HTTP server. */
  close(): Promise<void>;
}

/**
 * The newest runs and their latest state, kept from the source's own envelopes: the global
 * stream only announces active runs at connect, so the page asks here for finished ones.
 */
class RecentRuns {
  readonly #runs = new Map<string, RunState>();
  readonly unsubscribe: () => void;

  constructor(source: MemoryRunSource, limit: number) {
    this.unsubscribe = source.subscribe((envelope) => {
      if (envelope.type === "event") return;
      // The Map keeps creation order: a run's later states replace its entry in place.
      this.#runs.set(envelope.runId, envelope.data);
      if (this.#runs.size > limit) {
        // Forget the oldest finished run; an active run stays listed however old it is.
        for (const [id, state] of this.#runs) {
          if (isTerminalStatus(state.status)) {
            this.#runs.delete(id);
            break;
          }
        }
      }
    });
  }

  /** Newest first. */
  list(): RunState[] {
    return [...this.#runs.values()].reverse();
  }
}

/** Builds the example app around a MemoryRunSource and a simulated daemon. */
export function createExample(options: ExampleOptions = {}): Example {
  const source = options.source ?? new MemoryRunSource();
  const orchestrator = new Orchestrator(source, options.orchestrator);
  const recent = new RecentRuns(source, options.recentRuns ?? 50);
  const { tokenSecret } = options;
  const router = sseRouter(source, {
    retryMs: 1_000,
    ...(tokenSecret === undefined ? {} : { tokens: { secret: tokenSecret } }),
    ...options.router,
  });

  const app = express();
  app.disable("x-powered-by");
  app.use(express.json());

  // The two streams: GET /api/stream and GET /api/runs/:id/stream.
  app.use(router);

  if (tokenSecret !== undefined) {
    // A real app checks its session here and puts the user's tags in the token; the example
    // has no users, so its page gets a token for every run, valid for five minutes.
    app.get("/api/stream-token", (_req, res, next) => {
      createStreamToken(tokenSecret, { expiresIn: "5m" }).then((token) => {
        res.set("Cache-Control", "no-store").json({ token });
      }, next);
    });
  }

  // Recent runs, optionally those carrying a tag (`?tags=team:web`), as the stream filters them.
  app.get("/api/runs", (req, res) => {
    const tag = typeof req.query.tags === "string" && req.query.tags !== "" ? req.query.tags : undefined;
    const runs = recent.list();
    res.json({
      runs: tag === undefined ? runs : runs.filter((run) => Array.isArray(run.tags) && run.tags.includes(tag)),
    });
  });

  app.post("/api/runs", (req, res) => {
    const units: unknown = req.body?.units;
    if (units !== undefined && !isServiceList(units)) {
      res.status(400).json({ error: { code: "invalid_units", message: `units: a list of ${SERVICES.join(", ")}` } });
      return;
    }
    res.status(201).json({ run: orchestrator.startRun(units) });
  });

  app.get("/runcast/client.js", (_req, res) => {
    if (!existsSync(CLIENT_BUNDLE)) {
      res.status(503).type("text/plain").send("dist/client.browser.mjs is missing: run `npm run build`");
      return;
    }
    res.type("text/javascript").sendFile(CLIENT_BUNDLE);
  });

  app.use(express.static(path.join(__dirname, "public")));

  return {
    app,
    source,
    orchestrator,
    router,
    close: async () => {
      orchestrator.stop();
      recent.unsubscribe();
      await router.close();
    },
  };
}

function isServiceList(value: unknown): value is string[] {
  const known: readonly string[] = SERVICES;
  return (
    Array.isArray(value) &&
    value.length > 0 &&
    value.length <= known.length &&
    new Set(value).size === value.length &&
    value.every((unit) => typeof unit === "string" && known.includes(unit))
  );
}
