import { existsSync, mkdtempSync, rmSync } from "node:fs";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import express from "express";
import { type BrowserContext, chromium, type Page } from "playwright-core";
import { CLIENT_BUNDLE, createExample, type Example, type ExampleOptions } from "../../examples/app";

export const CHROMIUM = "/usr/bin/chromium";

/** Debian's Chromium through playwright-core, in a fresh profile; `close` also removes the profile. */
export async function launchBrowser(): Promise<{ context: BrowserContext; close(): Promise<void> }> {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: run scripts/ensure-chromium.sh`);
  if (!existsSync(CLIENT_BUNDLE)) throw new Error(`${CLIENT_BUNDLE} is missing: run \`npm run build\` first`);
  const profile = mkdtempSync(join(tmpdir(), "runcast-chromium-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
    viewport: { width: 1280, height: 800 },
    locale: "en-US",
    timezoneId: "UTC",
  });
  return {
    context,
    close: async () => {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

/** A request the example server received. */
export interface SeenRequest {
  method: string;
  path: string;
  /** The path and query, as requested. */
  url: string;
  /** `Last-Event-ID` header, or the `lastEventId` query parameter (how runcast/client resumes). */
  lastEventId: string | undefined;
  /** The `token` query parameter (how the page sends its stream token). */
  token: string | undefined;
  /** The token a `POST /api/stream-token` answered with, once it answered. */
  minted: string | undefined;
  /** The response's status once its head went out. */
  readonly status: number | undefined;
}

/** A stream request of the example: the global stream or a run's. */
export function isStreamRequest(seen: SeenRequest): boolean {
  return seen.method === "GET" && (seen.path === "/api/stream" || /^\/api\/runs\/[^/]+\/stream$/.test(seen.path));
}

/** The example app listening on 127.0.0.1. */
export interface RunningExample {
  example: Example;
  url: string;
  port: number;
  server: Server;
  requests: SeenRequest[];
  /** While `true`, `POST /api/stream-token` answers 503, as a broken token endpoint would. */
  failTokens: boolean;
  /** Destroys every connection, as a network drop would; the server keeps listening. */
  drop(): void;
  /** `example.close()` (streams end), then the server. */
  close(): Promise<void>;
}

/**
 * Starts the example app (no simulated runs unless a test starts them) on `port` (default: any
 * free one). Its streams need stream tokens, as under `npm run example`, signed with a random
 * secret of its own.
 */
export async function serveExample(options: ExampleOptions = {}, port = 0): Promise<RunningExample> {
  const example = createExample({ ...options, router: { heartbeatMs: 60_000, retryMs: 100, ...options.router } });
  const requests: SeenRequest[] = [];
  const app = express();
  let running: RunningExample | undefined;
  app.use((req, res, next) => {
    const text = (value: unknown) => (typeof value === "string" ? value : undefined);
    const seen: SeenRequest = {
      method: req.method,
      path: req.path,
      url: req.originalUrl,
      lastEventId: req.get("last-event-id") ?? text(req.query.lastEventId),
      token: text(req.query.token),
      minted: undefined,
      get status() {
        return res.headersSent ? res.statusCode : undefined;
      },
    };
    requests.push(seen);
    if (req.method === "POST" && req.path === "/api/stream-token") {
      if (running?.failTokens === true) {
        res.status(503).json({ error: { code: "unavailable", message: "no tokens now" } });
        return;
      }
      const json = res.json.bind(res);
      res.json = (body: { token?: unknown }) => {
        seen.minted = text(body?.token);
        return json(body);
      };
    }
    next();
  });
  app.use(example.app);
  const server = await new Promise<Server>((resolve, reject) => {
    const s = app.listen(port, "127.0.0.1", () => resolve(s));
    s.once("error", reject);
  });
  const actual = (server.address() as AddressInfo).port;
  running = {
    example,
    url: `http://127.0.0.1:${actual}`,
    port: actual,
    server,
    requests,
    failTokens: false,
    drop: () => server.closeAllConnections(),
    close: async () => {
      await example.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  return running;
}

/** What {@link dashboardSuite} gives a test file. */
export interface DashboardSuite {
  /** This test's page. */
  readonly page: Page;
  /** Starts the example app (see {@link serveExample}); it is closed after the test. */
  start(options?: ExampleOptions, port?: number): Promise<RunningExample>;
  /** Closes one the test started, before the test ends (a server restart). */
  stop(running: RunningExample): Promise<void>;
  /** Waits until `predicate(arg)` holds in the page (polling the DOM), or fails naming `what`. */
  until<T>(what: string, predicate: (arg: T) => boolean, arg: T, timeout?: number): Promise<void>;
  /** Waits until the connection pill with id `id` shows `status`. */
  pill(id: string, status: string): Promise<void>;
}

/**
 * The hooks every dashboard test file shares, registered where it is called: one Chromium for
 * the file, a fresh page for each test (an uncaught error of the page fails the test), and the
 * example apps a test started closed after it.
 */
export function dashboardSuite(): DashboardSuite {
  let browser: Awaited<ReturnType<typeof launchBrowser>> | undefined;
  let page: Page | undefined;
  let running: RunningExample[] = [];
  let pageErrors: Error[] = [];
  beforeAll(async () => {
    browser = await launchBrowser();
  });
  afterAll(async () => {
    await browser?.close();
  });
  beforeEach(async () => {
    page = await (browser as { context: BrowserContext }).context.newPage();
    pageErrors = [];
    page.on("pageerror", (error) => pageErrors.push(error));
  });
  afterEach(async () => {
    await page?.close();
    expect(pageErrors).toEqual([]);
    await Promise.all(running.map((r) => r.close()));
    running = [];
  });
  const current = (): Page => {
    if (page === undefined) throw new Error("no page outside a test");
    return page;
  };
  // Closures, not methods: test files destructure them.
  const until = async <T>(what: string, predicate: (arg: T) => boolean, arg: T, timeout = 15_000): Promise<void> => {
    try {
      await current().waitForFunction(predicate as (arg: unknown) => boolean, arg as unknown, { timeout, polling: 20 });
    } catch (error) {
      throw new Error(`timed out waiting for ${what}: ${(error as Error).message.split("\n")[0]}`);
    }
  };
  return {
    get page(): Page {
      return current();
    },
    start: async (options: ExampleOptions = {}, port?: number): Promise<RunningExample> => {
      const r = await serveExample(options, port);
      running.push(r);
      return r;
    },
    stop: async (r: RunningExample): Promise<void> => {
      running = running.filter((other) => other !== r);
      await r.close();
    },
    until,
    pill: (id: string, status: string): Promise<void> =>
      until(`#${id} to be ${status}`, ([i, s]) => document.getElementById(i)?.dataset.status === s, [
        id,
        status,
      ] as const),
  };
}
