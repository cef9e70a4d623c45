import { existsSync, mkdtempSync, rmSync } from "node:fs";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import express from "express";
import { type BrowserContext, chromium } from "playwright-core";
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
  /** `Last-Event-ID` header, or the `lastEventId` query parameter (how runcast/client resumes). */
  lastEventId: string | undefined;
}

/** The example app listening on 127.0.0.1. */
export interface RunningExample {
  example: Example;
  url: string;
  port: number;
  server: Server;
  requests: SeenRequest[];
  /** Destroys every connection, as a network drop would; the server keeps listening. */
  drop(): void;
  /** `example.close()` (streams end), then the server. */
  close(): Promise<void>;
}

/** Starts the example app (no simulated runs unless a test starts them) on `port` (default: any free one). */
export async function serveExample(options: ExampleOptions = {}, port = 0): Promise<RunningExample> {
  const example = createExample({ ...options, router: { heartbeatMs: 60_000, retryMs: 100, ...options.router } });
  const requests: SeenRequest[] = [];
  const app = express();
  app.use((req, _res, next) => {
    const query = req.query.lastEventId;
    requests.push({
      method: req.method,
      path: req.path,
      lastEventId: req.get("last-event-id") ?? (typeof query === "string" ? query : undefined),
    });
    next();
  });
  app.use(example.app);
  const server = await new Promise<Server>((resolve, reject) => {
    const s = app.listen(port, "127.0.0.1", () => resolve(s));
    s.once("error", reject);
  });
  const actual = (server.address() as AddressInfo).port;
  return {
    example,
    url: `http://127.0.0.1:${actual}`,
    port: actual,
    server,
    requests,
    drop: () => server.closeAllConnections(),
    close: async () => {
      await example.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
