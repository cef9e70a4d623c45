import { readFileSync } from "node:fs";
import type { Page } from "playwright-core";
import { CLIENT_BUNDLE } from "../../examples/app";
import { TEAMS } from "../../examples/orchestrator";
import { MemoryRunSource } from "../../lib/index";
import { runEvent, runState, sseFrame, type WireRequest, WireServer } from "../client/wire-server";
import { launchBrowser, type RunningExample, serveExample } from "./harness";

jest.setTimeout(60_000);

/** A team the example's visitor belongs to: its runs are in the page's token scope. */
const TEAM = TEAMS[0] as string;

/**
 * runcast/client as a page loads it (dist/client.browser.mjs through the example app), over
 * Chromium's own EventSource, whose `lastEventId` semantics differ from the eventsource
 * package's: a frame without an `id:` line repeats the previous id.
 */
describe("runcast/client in Chromium", () => {
  let browser: Awaited<ReturnType<typeof launchBrowser>>;
  let page: Page;
  let r: RunningExample | undefined;
  let wire: WireServer | undefined;

  beforeAll(async () => {
    browser = await launchBrowser();
  });
  afterAll(async () => {
    await browser?.close();
  });
  afterEach(async () => {
    await page?.close();
    await r?.close();
    await wire?.close();
    r = undefined;
    wire = undefined;
  });

  /**
   * The page side, as plain module source: passed as a string so that the test's own
   * compiler leaves `import` alone. It logs every handler call to `window.calls`.
   */
  const PAGE_HARNESS = `
    import { watchAll, watchRun } from "/runcast/client.js";
    window.calls = [];
    window.startWatch = (kind, path, options) => {
      const calls = window.calls;
      const handlers = {
        onState: (s, info) => calls.push(\`state:\${s.id}:\${s.completed_units}\${info.snapshot ? ":snapshot" : ""}\`),
        onEvent: (e) => calls.push(\`event:\${e.n}\`),
        onComplete: (s) => calls.push(\`complete:\${s.id}\`),
        onResync: (_runs, info) => calls.push(\`resync:\${info.reason}\${info.removed === undefined ? "" : \`:removed=\${info.removed.join(",")}\`}\`),
        onStatus: (status) => calls.push(\`status:\${status}\`),
        onError: (e) => calls.push(\`error:\${e.code}:\${e.status}:\${e.serverCode}\`),
      };
      // With mintTokens, the URL is a function that mints a new token for every connection.
      let minted = 0;
      // With exampleTokens, a real token from the example app for every connection, as its dashboard gets one.
      const exampleToken = async () => {
        const { token } = await (await fetch("/api/stream-token", { method: "POST" })).json();
        return \`\${path}\${path.includes("?") ? "&" : "?"}token=\${encodeURIComponent(token)}\`;
      };
      const url = options?.mintTokens
        ? async () => { await new Promise((resolve) => setTimeout(resolve, 1)); minted++; return \`\${path}?token=tok-\${minted}\`; }
        : options?.exampleTokens ? exampleToken : path;
      window.errorMessages = [];
      const onError = handlers.onError;
      handlers.onError = (e) => { window.errorMessages.push(e.message); onError(e); };
      window.watcher = kind === "watchAll" ? watchAll(url, handlers, options) : watchRun(url, handlers, options);
    };
    window.harnessReady = true;
  `;

  /** Opens a same-origin page and starts a watcher there. */
  async function watchInPage(
    kind: "watchRun" | "watchAll",
    path: string,
    options: Record<string, unknown> = {},
  ): Promise<void> {
    page = await browser.context.newPage();
    // Any same-origin document will do: the client is imported as a module from the app.
    await page.goto(r === undefined ? `${wire?.url}/` : `${r.url}/api/runs`);
    await page.addScriptTag({ type: "module", content: PAGE_HARNESS });
    await page.waitForFunction(() => (window as unknown as { harnessReady?: boolean }).harnessReady === true);
    await page.evaluate(
      ([k, p, o]) =>
        (window as unknown as { startWatch: (kind: string, path: string, options: unknown) => void }).startWatch(
          k,
          p,
          o,
        ),
      // The example app's streams need its stream tokens, as its own dashboard's do.
      [kind, path, r === undefined ? options : { exampleTokens: true, ...options }] as const,
    );
  }

  const calls = (): Promise<string[]> => page.evaluate(() => (window as unknown as { calls: string[] }).calls);

  async function until(what: string, predicate: (calls: string[]) => boolean): Promise<string[]> {
    const deadline = Date.now() + 15_000;
    for (;;) {
      const seen = await calls();
      if (predicate(seen)) return seen;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; calls: ${seen.join(" ")}`);
      await page
        .waitForFunction((n) => (window as unknown as { calls: string[] }).calls.length > n, seen.length, {
          timeout: Math.max(1, deadline - Date.now()),
        })
        .catch(() => undefined);
    }
  }

  // Chromium's EventSource only says that it gave up; the watcher asks the server why.
  it.each([
    // Under the example's team-scoped tokens, an unknown run answers like another team's: 403.
    ["a run the server does not know", "/api/runs/nope/stream", "403:forbidden"],
    ["a malformed run id", "/api/runs/bad%20id/stream", "400:invalid_run_id"],
  ])("closes a watcher of %s with stream_refused, its HTTP status and error code", async (_what, path, why) => {
    r = await serveExample({ source: new MemoryRunSource() });
    await watchInPage("watchRun", path);
    const seen = await until("the refusal", (c) => c.includes("status:closed"));
    expect(seen).toEqual(["status:reconnecting", `error:stream_refused:${why}`, "status:closed"]);
  });

  it("watchAll resyncs on the server's resync frame and removes the run that ended meanwhile", async () => {
    const source = new MemoryRunSource({ historySize: 2, maxRunLogSize: 2 });
    // The router's memory of recent frames off: it would serve what the history no longer holds.
    const running = await serveExample({ source, router: { resumeCacheBytes: 0 } });
    r = running;
    for (const id of ["a", "b", "c"]) source.createRun({ id, tags: [TEAM] });
    await watchInPage("watchAll", "/api/stream", { retryMs: 50 });
    await until("the snapshot", (c) => c.includes("state:c:0:snapshot"));
    source.recordEvent("a", { type: "unit.progress", n: 0 });
    await until("event 0", (c) => c.includes("event:0"));

    running.drop();
    source.completeRun("a", { status: "completed" });
    source.createRun({ id: "d", tags: [TEAM] });
    source.updateRun("b", { status: "running", completed_units: 2 });
    source.recordEvent("c", { type: "unit.progress", n: 1 });
    await until("the resync", (c) => c.some((call) => call.startsWith("resync")));
    source.recordEvent("d", { type: "unit.progress", n: 2 });
    const seen = await until("a live event after the resync", (c) => c.includes("event:2"));

    expect(seen.slice(seen.indexOf("event:0") + 1)).toEqual([
      "status:reconnecting",
      "status:live",
      "state:b:2:snapshot",
      "state:c:0:snapshot",
      "state:d:0:snapshot",
      "resync:trimmed:removed=a",
      "event:2",
    ]);
    const runs = await page.evaluate(() =>
      [...(window as unknown as { watcher: { state: Map<string, unknown> } }).watcher.state.keys()].sort(),
    );
    expect(runs).toEqual(["b", "c", "d"]);
  });

  it("watchRun gets missed events once after a drop, resyncs past the log, and stops at complete", async () => {
    const source = new MemoryRunSource({ historySize: 3, maxRunLogSize: 3 });
    // The router's memory of recent frames off: it would serve what the log no longer holds.
    const running = await serveExample({ source, router: { resumeCacheBytes: 0 } });
    r = running;
    source.createRun({ id: "r", tags: [TEAM] });
    await watchInPage("watchRun", "/api/runs/r/stream", { retryMs: 50 });
    await until("the initial state", (c) => c.includes("state:r:0:snapshot"));
    source.recordEvent("r", { type: "unit.progress", n: 0 });
    await until("event 0", (c) => c.includes("event:0"));

    // A short drop: replayed.
    running.drop();
    source.recordEvent("r", { type: "unit.progress", n: 1 });
    source.recordEvent("r", { type: "unit.progress", n: 2 });
    await until("events 1 and 2", (c) => c.includes("event:2"));

    // A long one: more than the log holds, so a resync and a fresh snapshot.
    running.drop();
    for (const n of [3, 4, 5, 6]) source.recordEvent("r", { type: "unit.progress", n });
    source.updateRun("r", { status: "running", completed_units: 4 });
    await until("the resync", (c) => c.some((call) => call.startsWith("resync")));
    source.completeRun("r", { status: "completed", completed_units: 4 });
    const seen = await until("the end", (c) => c.includes("status:closed"));

    expect(seen).toEqual([
      "status:live",
      "state:r:0:snapshot",
      "event:0",
      "status:reconnecting",
      "status:live",
      "event:1",
      "event:2",
      "status:reconnecting",
      "status:live",
      "state:r:4:snapshot",
      "resync:trimmed",
      "complete:r",
      "status:closed",
    ]);
    const streams = running.requests.filter((req) => req.path.endsWith("/stream"));
    expect(streams.map((req) => req.lastEventId === undefined)).toEqual([true, false, false]);
  });

  /**
   * The wire format of resync and heartbeat frames, written byte for byte by a plain server
   * that also serves the page and the client: in Chromium, id-less frames (resync, heartbeat,
   * snapshot states) repeat the previous id in `lastEventId`, and none of that may confuse
   * the client.
   */
  async function serveWire(
    streams: Array<(res: import("node:http").ServerResponse) => void> | ((req: WireRequest) => void),
  ): Promise<WireServer> {
    const bundle = readFileSync(CLIENT_BUNDLE);
    let stream = 0;
    const started = await WireServer.start((req) => {
      const { url, res } = req;
      if (url.pathname === "/runcast/client.js") {
        res.writeHead(200, { "Content-Type": "text/javascript" }).end(bundle);
      } else if (url.pathname === "/") {
        res.writeHead(200, { "Content-Type": "text/html" }).end("<!doctype html><title>wire</title>");
      } else if (!url.pathname.startsWith("/api/")) {
        res.writeHead(404).end();
      } else if (typeof streams === "function") {
        streams(req);
      } else {
        WireServer.open(res);
        streams[stream++]?.(res);
      }
    });
    wire = started;
    return started;
  }

  it("watchAll: a resync frame's snapshot replaces the runs, heartbeats end an empty one, ids stay right", async () => {
    const heartbeat = sseFrame("heartbeat", { intervalMs: 60_000 });
    const server = await serveWire([
      (res) =>
        res.write(
          sseFrame("state", runState("a", 0)) +
            sseFrame("state", runState("b", 0), "5") +
            heartbeat +
            sseFrame("event", runEvent("a", 0), "6") +
            heartbeat,
        ),
      (res) =>
        res.write(
          sseFrame("resync", { reason: "trimmed" }) +
            sseFrame("state", runState("b", 2)) +
            sseFrame("state", runState("d", 0), "20") +
            heartbeat +
            sseFrame("event", runEvent("d", 1), "21"),
        ),
      (res) => res.write(sseFrame("resync", { reason: "unknown_id" }) + heartbeat),
    ]);
    await watchInPage("watchAll", "/api/stream", { retryMs: 50 });
    await until("event 0", (c) => c.includes("event:0"));
    server.drop();
    await until("event 1", (c) => c.includes("event:1"));
    server.drop();
    const seen = await until("the second resync", (c) => c.includes("resync:unknown_id:removed=b,d"));

    expect(seen.filter((call) => !call.startsWith("status:"))).toEqual([
      "state:a:0:snapshot",
      "state:b:0:snapshot",
      "event:0",
      "state:b:2:snapshot",
      "state:d:0:snapshot",
      "resync:trimmed:removed=a",
      "event:1",
      "resync:unknown_id:removed=b,d",
    ]);
    const streams = server.requests.filter((req) => req.url.pathname.startsWith("/api/"));
    expect(streams.map((req) => [req.url.searchParams.get("heartbeat"), req.lastEventId])).toEqual([
      ["event", undefined],
      ["event", "6"],
      ["event", "21"],
    ]);
  });

  it("a URL function mints a token for every connection; a 401 gets one fresh try, read through the status probe", async () => {
    const seenTokens: string[] = [];
    // Answers by token, not by order: the status probe asks the same URL again.
    const server = await serveWire(({ url, res }) => {
      const token = url.searchParams.get("token") ?? "";
      seenTokens.push(token);
      if (token === "tok-2") {
        res.writeHead(401, { "Content-Type": "application/json" });
        res.end(JSON.stringify({ error: { code: "token_expired", message: "expired" } }));
        return;
      }
      WireServer.open(res);
      // The server ends the stream when its token expires.
      if (token === "tok-1")
        res.end(sseFrame("state", runState("r", 0), "1") + sseFrame("event", runEvent("r", 0), "2"));
      else res.write(sseFrame("event", runEvent("r", 1), "3"));
    });
    await watchInPage("watchRun", "/api/runs/r/stream", { retryMs: 50, mintTokens: true });
    const seen = await until("the event after the fresh token", (c) => c.includes("event:1"));
    expect(seen).toEqual([
      "status:live",
      "state:r:0:snapshot",
      "event:0",
      "status:reconnecting",
      "error:stream_failed:401:token_expired",
      "status:live",
      "event:1",
    ]);
    // tok-2 twice: the EventSource's request and the status probe's.
    expect(seenTokens).toEqual(["tok-1", "tok-2", "tok-2", "tok-3"]);
    const streams = server.requests.filter((req) => req.url.pathname.startsWith("/api/"));
    expect(streams.map((req) => req.lastEventId)).toEqual([undefined, "2", "2", "2"]);
    const messages = await page.evaluate(() => (window as unknown as { errorMessages: string[] }).errorMessages);
    expect(messages.join(" ")).not.toContain("tok-");
  });

  it("watchRun: a server that stops writing without closing is taken for dead after 3 heartbeat intervals and resumed", async () => {
    const heartbeat = sseFrame("heartbeat", { intervalMs: 200 });
    const server = await serveWire([
      // Two heartbeats and an event, then silence with the response left open.
      (res) =>
        res.write(
          sseFrame("state", runState("r", 0), "1") + heartbeat + sseFrame("event", runEvent("r", 0), "2") + heartbeat,
        ),
      (res) =>
        res.write(
          sseFrame("resync", { reason: "unknown_id", runId: "r" }) +
            sseFrame("state", runState("r", 3), "9") +
            sseFrame("complete", runState("r", 3, "completed"), "10"),
        ),
    ]);
    await watchInPage("watchRun", "/api/runs/r/stream", { retryMs: 50 });
    const seen = await until("the end", (c) => c.includes("status:closed"));
    expect(seen).toEqual([
      "status:live",
      "state:r:0:snapshot",
      "event:0",
      "error:stream_stalled:undefined:undefined",
      "status:reconnecting",
      "status:live",
      "state:r:3:snapshot",
      "resync:unknown_id",
      "complete:r",
      "status:closed",
    ]);
    const streams = server.requests.filter((req) => req.url.pathname.startsWith("/api/"));
    expect(streams.map((req) => req.lastEventId)).toEqual([undefined, "2"]);
  });
});
