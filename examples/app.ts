/**
 * The example's web app: runcast's streams, a small JSON API, and the dashboard page.
 *
 *   GET  /api/stream              every run, live        (runcast; needs ?token=)
 *   GET  /api/runs/:id/stream     one run, live          (runcast; needs ?token=)
 *   POST /api/stream-token        a stream token         (this file)
 *   GET  /api/runs                recent runs, as JSON   (this file)
 *   POST /api/runs                start a run            (this file)
 *   GET  /                        the dashboard          (examples/public)
 *   GET  /runcast/client.js       runcast/client for the page (dist/client.browser.mjs)
 */
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import path from "node:path";
import express from "express";
// In your app: import { MemoryRunSource, sseRouter, ... } from "runcast";
import {
  isTerminalStatus,
  MemoryRunSource,
  type RunState,
  type SseRouter,
  type SseRouterOptions,
  sseRouter,
} from "../lib/index";
import { Orchestrator, type OrchestratorOptions, SERVICES, TEAMS } from "./orchestrator";
import { checkedLifetime, DEFAULT_TOKEN_LIFETIME_SECONDS, streamTokenEndpoint } from "./stream-token";

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
   * The secret stream tokens are signed with (at least 32 bytes). Every stream requires a
   * token; the page gets one from `POST /api/stream-token` before each connection.
   * @default 32 random bytes, made for this app (`npm run example` reads RUNCAST_TOKEN_SECRET)
   */
  tokenSecret?: string | Uint8Array;
  /** How long a token from `POST /api/stream-token` is valid, in seconds. @default 300 */
  tokenLifetimeSeconds?: number;
  /**
   * The teams the demo visitor belongs to: their tokens, and `GET /api/runs`, cover the runs
   * tagged with these. @default every team (`TEAMS`)
   */
  sessionTeams?: readonly string[];
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
  const secret = options.tokenSecret ?? randomBytes(32);
  const lifetime = checkedLifetime(options.tokenLifetimeSeconds ?? DEFAULT_TOKEN_LIFETIME_SECONDS);
  const teams = [...(options.sessionTeams ?? TEAMS)];
  // The visitor's session. The example has no login: every visitor is one demo user, a member
  // of `teams`. A real app reads its own session here (what its session middleware found in
  // the cookie) and derives what the user may see from it, such as the teams they belong to.
  const sessionOf = (_req: express.Request) => ({ teams });
  // The streams accept only tokens signed with the secret; a token's tags are what it sees.
  const router = sseRouter(source, { retryMs: 1_000, ...options.router, tokens: { secret } });

  const app = express();
  app.disable("x-powered-by");
  app.use(express.json());

  // The two streams: GET /api/stream and GET /api/runs/:id/stream.
  app.use(router);

  // A token for the page, scoped to the session's teams: the streams show it their runs only,
  // whatever `?tags=` it asks for. Short-lived; the page fetches a new one for every connection.
  app.post(
    "/api/stream-token",
    streamTokenEndpoint(secret, lifetime, (req) => ({ tags: sessionOf(req).teams })),
  );

  // Recent runs the session may see, optionally those carrying a tag (`?tags=team:web`), as
  // the stream filters them.
  app.get("/api/runs", (req, res) => {
    const { teams } = sessionOf(req);
    const tag = typeof req.query.tags === "string" && req.query.tags !== "" ? req.query.tags : undefined;
    const shown = (run: RunState) =>
      Array.isArray(run.tags) &&
      run.tags.some((each) => teams.includes(each)) &&
      (tag === undefined || run.tags.includes(tag));
    res.json({ runs: recent.list().filter(shown) });
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
