import { buildSync } from "esbuild";
import { EventSource } from "eventsource";
import type { Page } from "playwright-core";
import { CLIENT_BUNDLE } from "../../examples/app";
import { MemoryRunSource } from "../../lib/index";
import { eventually, serve, type TestServer } from "../helpers/server";
import { SseStream } from "../helpers/sse";
import { launchBrowser } from "./harness";

jest.setTimeout(60_000);

/** @microsoft/fetch-event-source as one ES module a page can import (it only runs in browsers). */
const FETCH_EVENT_SOURCE = buildSync({
  entryPoints: [require.resolve("@microsoft/fetch-event-source/lib/esm/index.js")],
  bundle: true,
  format: "esm",
  write: false,
}).outputFiles[0]?.text;

/** What a page or client saw: the data of every message it was handed, and what went wrong. */
interface Seen {
  messages: string[];
  errors: string[];
}

/**
 * The third-party SSE clients users reach for, on a stream with a `retry:` field, frames and
 * heartbeats between them: each must see exactly the frames, parse every one, and never
 * reconnect.
 */
describe("popular SSE clients read runcast's streams", () => {
  let browser: Awaited<ReturnType<typeof launchBrowser>>;
  let page: Page | undefined;
  let source: MemoryRunSource;
  let t: TestServer;
  let streamRequests: number;
  /** While set, stream requests get what a proxy answers while the server behind it restarts. */
  let badGateway: boolean;
  let badGatewayAnswers: number;

  beforeAll(async () => {
    browser = await launchBrowser();
  });
  afterAll(async () => {
    await browser?.close();
  });
  beforeEach(async () => {
    source = new MemoryRunSource();
    source.createRun({ id: "r" });
    streamRequests = 0;
    badGateway = false;
    badGatewayAnswers = 0;
    t = await serve(source, { heartbeatMs: 25, retryMs: 100 }, (app) => {
      app.use((req, res, next) => {
        if (req.path === "/api/runs/r/stream") streamRequests++;
        if (!badGateway || !req.path.endsWith("/stream")) return next();
        badGatewayAnswers++;
        res.status(502).type("text/html").send("<h1>502 Bad Gateway</h1>");
      });
      app.get("/runcast/client.js", (_req, res) => res.type("text/javascript").sendFile(CLIENT_BUNDLE));
      app.get("/fetch-event-source.mjs", (_req, res) => res.type("text/javascript").send(FETCH_EVENT_SOURCE));
      app.get("/", (_req, res) => res.type("text/html").send("<!doctype html><title>clients</title>"));
    });
  });
  afterEach(async () => {
    await page?.close();
    page = undefined;
    await t.close();
  });

  /** Waits until a second stream of the same router saw `count` heartbeats: the shared timer beat for every client. */
  async function heartbeats(count: number): Promise<void> {
    const probe = await SseStream.open(`${t.url}/api/stream`);
    await probe.until(() => probe.comments.length >= count, `${count} heartbeats`);
    probe.close();
  }

  async function inPage(script: string): Promise<Page> {
    const p = await browser.context.newPage();
    await p.goto(`${t.url}/`);
    await p.addScriptTag({ type: "module", content: script });
    await p.waitForFunction(() => (window as unknown as { seen?: Seen }).seen !== undefined);
    return p;
  }

  const seenIn = (p: Page): Promise<Seen> => p.evaluate(() => (window as unknown as { seen: Seen }).seen);

  async function untilMessages(p: Page, count: number): Promise<Seen> {
    await p
      .waitForFunction((n) => (window as unknown as { seen: Seen }).seen.messages.length >= n, count, {
        timeout: 10_000,
        polling: 20,
      })
      .catch(() => undefined);
    return seenIn(p);
  }

  it("@microsoft/fetch-event-source in Chromium: a handler parsing every message as JSON never fails", async () => {
    // As its README shows: one onmessage for everything, JSON.parse on each message.
    page = await inPage(`
      import { fetchEventSource } from "/fetch-event-source.mjs";
      const seen = { messages: [], errors: [] };
      window.seen = seen;
      fetchEventSource("/api/runs/r/stream", {
        openWhenHidden: true,
        onmessage(msg) {
          const data = JSON.parse(msg.data);
          seen.messages.push(msg.event + ":" + (data.type ?? data.status));
        },
        onerror(err) {
          seen.errors.push(String(err));
        },
      });
    `);
    expect((await untilMessages(page, 1)).errors).toEqual([]);
    await heartbeats(3);
    source.recordEvent("r", { type: "unit.started" });
    const seen = await untilMessages(page, 2);
    expect(seen).toEqual({ messages: ["state:pending", "event:unit.started"], errors: [] });
    expect(streamRequests).toBe(1);
  });

  it("Chromium's EventSource: frames by their event names, no message events, no reconnect", async () => {
    page = await inPage(`
      const seen = { messages: [], errors: [] };
      window.seen = seen;
      const es = new EventSource("/api/runs/r/stream");
      for (const type of ["state", "event", "message"]) {
        es.addEventListener(type, (e) => seen.messages.push(type + ":" + e.data.length));
      }
      es.onerror = () => seen.errors.push("error");
    `);
    await untilMessages(page, 1);
    await heartbeats(3);
    source.recordEvent("r", { type: "unit.started" });
    const seen = await untilMessages(page, 2);
    expect(seen.messages.map((m) => m.split(":")[0])).toEqual(["state", "event"]);
    expect(seen.errors).toEqual([]);
    expect(streamRequests).toBe(1);
  });

  it("the eventsource package: frames by their event names, no message events, no reconnect", async () => {
    const seen: Seen = { messages: [], errors: [] };
    const es = new EventSource(`${t.url}/api/runs/r/stream`);
    try {
      for (const type of ["state", "event", "message"]) {
        es.addEventListener(type, (e) => seen.messages.push(`${type}:${JSON.parse(e.data).id ?? "event"}`));
      }
      es.onerror = (e) => seen.errors.push(String(e.message));
      const wait = (n: number) => eventually(() => seen.messages.length >= n, `${n} messages`);
      await wait(1);
      await heartbeats(3);
      source.recordEvent("r", { type: "unit.started" });
      await wait(2);
      expect(seen).toEqual({ messages: ["state:r", "event:event"], errors: [] });
      expect(streamRequests).toBe(1);
    } finally {
      es.close();
    }
  });

  it("after a proxy's 502, Chromium's EventSource stops for good while runcast/client comes back", async () => {
    page = await inPage(`
      import { watchRun } from "/runcast/client.js";
      const seen = { messages: [], errors: [] };
      window.seen = seen;
      const es = new EventSource("/api/runs/r/stream");
      es.addEventListener("event", (e) => seen.messages.push("EventSource:" + JSON.parse(e.data).type));
      window.eventSource = es;
      watchRun("/api/runs/r/stream", {
        onEvent: (event) => seen.messages.push("watchRun:" + event.type),
        onStatus: (status) => seen.errors.push("watchRun status:" + status),
      }, { retryMs: 50 });
    `);
    await page.waitForFunction(() =>
      (window as unknown as { seen: Seen }).seen.errors.includes("watchRun status:live"),
    );
    // The server goes away; the proxy in front answers 502 until it is back.
    badGateway = true;
    t.server.closeAllConnections();
    await page.waitForFunction(
      // 2: CLOSED (the EventSource name here is the eventsource package's, not the page's).
      () => (window as unknown as { eventSource: { readyState: number } }).eventSource.readyState === 2,
    );
    await eventually(() => badGatewayAnswers >= 3, "the watcher to retry through the 502s", 10_000);
    badGateway = false;
    source.recordEvent("r", { type: "unit.started" });
    const seen = await untilMessages(page, 1);
    expect(seen.messages).toEqual(["watchRun:unit.started"]);
    expect(
      await page.evaluate(() => (window as unknown as { eventSource: { readyState: number } }).eventSource.readyState),
    ).toBe(2);
  });
});
