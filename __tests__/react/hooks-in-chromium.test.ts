import path from "node:path";
import { build } from "esbuild";
import type { Page } from "playwright-core";
import { MemoryRunSource } from "../../lib/index";
import { launchBrowser } from "../browser/harness";
import { eventually, serve, type TestServer } from "../helpers/server";

jest.setTimeout(60_000);

type View = {
  status: string;
  state: { status?: string; completed_units?: number } | null;
  events: number[];
  error: string | null;
};

/**
 * runcast/react's hooks in a real React 19 page in Chromium, against a real server: what they
 * return, and what they do to connections (counted on the server).
 */
describe("runcast/react in Chromium", () => {
  let browser: Awaited<ReturnType<typeof launchBrowser>>;
  let bundle: string;
  let source: MemoryRunSource;
  let t: TestServer;
  let page: Page;
  /** Stream requests the server received, by path. */
  let streamRequests: string[];

  beforeAll(async () => {
    const result = await build({
      entryPoints: [path.join(__dirname, "page.ts")],
      bundle: true,
      write: false,
      format: "esm",
      platform: "browser",
      target: "es2022",
      alias: { "runcast/client": path.join(__dirname, "../../lib/client/index.ts") },
      define: { "process.env.NODE_ENV": '"development"' },
      logLevel: "silent",
    });
    bundle = result.outputFiles[0]?.text ?? "";
    browser = await launchBrowser();
  });
  afterAll(async () => {
    await browser?.close();
  });

  beforeEach(async () => {
    source = new MemoryRunSource({ maxRunLogSize: 1_000 });
    streamRequests = [];
    t = await serve(source, { heartbeatMs: 60_000, retryMs: 50 }, (app) => {
      app.use((req, _res, next) => {
        if (req.path.endsWith("/stream")) streamRequests.push(req.path);
        next();
      });
      app.get("/", (_req, res) =>
        res.type("html").send('<!doctype html><div id="root"></div><script type="module" src="/page.js"></script>'),
      );
      app.get("/page.js", (_req, res) => res.type("js").send(bundle));
    });
    page = await browser.context.newPage();
    await page.goto(t.url);
    await page.waitForFunction(() => "app" in window);
  });
  afterEach(async () => {
    await page?.close();
    await t.close();
  });

  const view = (name = "panel0"): Promise<View | undefined> =>
    page.evaluate((n) => (window as unknown as { views: Record<string, View> }).views[n], name);

  /** Waits, with a timeout, until the hook of panel `name` returned a view that passes `check`. */
  async function until(what: string, check: (v: View) => boolean, name = "panel0"): Promise<View> {
    try {
      await page.waitForFunction(
        ([n, source]) => {
          const v = (window as unknown as { views: Record<string, unknown> }).views[n];
          // The check is the test's own arrow function, sent as text.
          return v !== undefined && new Function(`return (${source})`)()(v);
        },
        [name, check.toString()] as const,
        { timeout: 15_000, polling: 20 },
      );
    } catch {
      throw new Error(`timed out waiting for ${what}; view: ${JSON.stringify(await view(name))}`);
    }
    return (await view(name)) as View;
  }

  it("StrictMode's double mount and two components on one URL leave exactly one connection; events, drops and complete come through", async () => {
    source.createRun({ id: "r", total_units: 2 });
    await page.evaluate(() =>
      (window as unknown as { app: { mount(u: string, c: number, s: boolean): void } }).app.mount(
        "/api/runs/r/stream",
        2,
        true,
      ),
    );
    await until("live", (v) => v.status === "live");
    await eventually(() => t.router.clientCount("r") === 1, "one connection");
    // Not one closed and one reopened either: the only request ever made.
    expect(streamRequests).toEqual(["/api/runs/r/stream"]);
    expect(await page.evaluate(() => (window as unknown as { eventSources: number }).eventSources)).toBe(1);
    source.recordEvent("r", { type: "unit.started", n: 1 });
    await until("event 1", (v) => v.events.includes(1));
    // A network drop: the hook's watcher resumes, and no event is doubled or lost.
    t.server.closeAllConnections();
    source.recordEvent("r", { type: "unit.completed", n: 2 });
    source.updateRun("r", { status: "running", completed_units: 1 });
    await until("event 2 after the drop", (v) => v.events.includes(2));
    source.completeRun("r", { status: "completed", completed_units: 2 });
    const done = await until("complete", (v) => v.status === "closed");
    expect(done.events).toEqual([1, 2]);
    expect(done.state?.status).toBe("completed");
    expect(await view("panel1")).toMatchObject({ events: [1, 2], status: "closed" });
    expect(t.router.clientCount("r")).toBe(0);
  });

  it('a component mounted late gets the run\'s history first (from: "start"), then live events', async () => {
    source.createRun({ id: "late" });
    for (let n = 1; n <= 5; n++) source.recordEvent("late", { type: "unit.progress", n });
    await page.evaluate(() =>
      (window as unknown as { app: { mount(u: string, c: number, s: boolean): void } }).app.mount(
        "/api/runs/late/stream",
        1,
        true,
      ),
    );
    await until("the history", (v) => v.events.length === 5);
    source.recordEvent("late", { type: "unit.progress", n: 6 });
    const v = await until("the live event", (v) => v.events.length === 6);
    expect(v.events).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it("unmounting closes the connection; a new URL moves it", async () => {
    source.createRun({ id: "a" });
    source.createRun({ id: "b", total_units: 7 });
    await page.evaluate(() =>
      (window as unknown as { app: { mount(u: string, c: number, s: boolean): void } }).app.mount(
        "/api/runs/a/stream",
        1,
        true,
      ),
    );
    await eventually(() => t.router.clientCount("a") === 1, "a watched");
    await page.evaluate(() =>
      (window as unknown as { app: { setUrl(u: string): void } }).app.setUrl("/api/runs/b/stream"),
    );
    await until("run b's state", (v) => v.state?.completed_units === 0 && v.status === "live");
    await eventually(() => t.router.clientCount("a") === 0 && t.router.clientCount("b") === 1, "the watch moved to b");
    await page.evaluate(() => (window as unknown as { app: { unmount(): void } }).app.unmount());
    await eventually(() => t.router.clientCount() === 0, "every connection closed after unmount");
  });

  it("useRuns lists the runs of the global stream and follows new ones", async () => {
    source.createRun({ id: "one" });
    await page.evaluate(() =>
      (window as unknown as { app: { mountAll(u: string): void } }).app.mountAll("/api/stream"),
    );
    await page.waitForFunction(() =>
      (window as unknown as { allView?: { runs: string[] } }).allView?.runs.includes("one"),
    );
    source.createRun({ id: "two" });
    await page.waitForFunction(() =>
      (window as unknown as { allView?: { runs: string[] } }).allView?.runs.includes("two"),
    );
    expect(t.router.clientCount()).toBe(1);
  });
});
