import type { Page } from "playwright-core";
import { MemoryRunSource } from "../../lib/index";
import { launchBrowser, type RunningExample, serveExample } from "./harness";

jest.setTimeout(60_000);

/**
 * runcast/client as a page loads it (dist/client.browser.mjs through the example app), over
 * Chromium's own EventSource, whose `lastEventId` semantics differ from the eventsource
 * package's: a frame without an `id:` line repeats the previous id.
 */
describe("runcast/client in Chromium", () => {
  let browser: Awaited<ReturnType<typeof launchBrowser>>;
  let page: Page;
  let r: RunningExample;

  beforeAll(async () => {
    browser = await launchBrowser();
  });
  afterAll(async () => {
    await browser?.close();
  });
  afterEach(async () => {
    await page?.close();
    await r?.close();
  });

  /**
   * The page side, as plain module source: passed as a string so that the test's own
   * compiler leaves `import` alone. It logs every handler call to `window.calls`.
   */
  const PAGE_HARNESS = `
    import { watchAll, watchRun } from "/runcast/client.js";
    window.calls = [];
    window.startWatch = (kind, path) => {
      const calls = window.calls;
      const handlers = {
        onState: (s, info) => calls.push(\`state:\${s.id}:\${s.completed_units}\${info.snapshot ? ":snapshot" : ""}\`),
        onEvent: (e) => calls.push(\`event:\${e.n}\`),
        onComplete: (s) => calls.push(\`complete:\${s.id}\`),
        onResync: (_runs, info) => calls.push(info === undefined ? "resync" : \`resync:removed=\${info.removed.join(",")}\`),
        onStatus: (status) => calls.push(\`status:\${status}\`),
        onError: (e) => calls.push(\`error:\${e.code}:\${e.status}:\${e.serverCode}\`),
      };
      window.watcher = kind === "watchAll" ? watchAll(path, handlers) : watchRun(path, handlers);
    };
    window.harnessReady = true;
  `;

  /** Opens a same-origin page and starts a watcher there. */
  async function watchInPage(kind: "watchRun" | "watchAll", path: string): Promise<void> {
    page = await browser.context.newPage();
    // Any same-origin document will do: the client is imported as a module from the app.
    await page.goto(`${r.url}/api/runs`);
    await page.addScriptTag({ type: "module", content: PAGE_HARNESS });
    await page.waitForFunction(() => (window as unknown as { harnessReady?: boolean }).harnessReady === true);
    await page.evaluate(
      ([k, p]) => (window as unknown as { startWatch: (kind: string, path: string) => void }).startWatch(k, p),
      [kind, path] as const,
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
    ["a run the server does not know", "/api/runs/nope/stream", "404:run_not_found"],
    ["a malformed run id", "/api/runs/bad%20id/stream", "400:invalid_run_id"],
  ])("closes a watcher of %s with stream_refused, its HTTP status and error code", async (_what, path, why) => {
    r = await serveExample({ source: new MemoryRunSource() });
    await watchInPage("watchRun", path);
    const seen = await until("the refusal", (c) => c.includes("status:closed"));
    expect(seen).toEqual(["status:reconnecting", `error:stream_refused:${why}`, "status:closed"]);
  });

  it("watchAll resyncs from an id-less snapshot and removes the run that ended meanwhile", async () => {
    const source = new MemoryRunSource({ historySize: 2, maxRunLogSize: 2 });
    r = await serveExample({ source });
    for (const id of ["a", "b", "c"]) source.createRun({ id });
    await watchInPage("watchAll", "/api/stream");
    await until("the snapshot", (c) => c.includes("state:c:0:snapshot"));
    source.recordEvent("a", { type: "unit.progress", n: 0 });
    await until("event 0", (c) => c.includes("event:0"));

    r.drop();
    source.completeRun("a", { status: "completed" });
    source.createRun({ id: "d" });
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
      "resync:removed=a",
      "event:2",
    ]);
    const runs = await page.evaluate(() =>
      [...(window as unknown as { watcher: { state: Map<string, unknown> } }).watcher.state.keys()].sort(),
    );
    expect(runs).toEqual(["b", "c", "d"]);
  });

  it("watchRun gets missed events once after a drop, resyncs past the history, and stops at complete", async () => {
    const source = new MemoryRunSource({ historySize: 3, maxRunLogSize: 3 });
    r = await serveExample({ source });
    source.createRun({ id: "r" });
    await watchInPage("watchRun", "/api/runs/r/stream");
    await until("the initial state", (c) => c.includes("state:r:0:snapshot"));
    source.recordEvent("r", { type: "unit.progress", n: 0 });
    await until("event 0", (c) => c.includes("event:0"));

    // A short drop: replayed.
    r.drop();
    source.recordEvent("r", { type: "unit.progress", n: 1 });
    source.recordEvent("r", { type: "unit.progress", n: 2 });
    await until("events 1 and 2", (c) => c.includes("event:2"));

    // A long one: more than the history holds, so a fresh snapshot.
    r.drop();
    for (const n of [3, 4, 5, 6]) source.recordEvent("r", { type: "unit.progress", n });
    source.updateRun("r", { status: "running", completed_units: 4 });
    await until("the resync", (c) => c.includes("resync"));
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
      "resync",
      "complete:r",
      "status:closed",
    ]);
  });
});
