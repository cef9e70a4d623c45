import type { Page } from "playwright-core";
import { TEAMS } from "../../examples/orchestrator";
import type { MemoryRunSource } from "../../lib/index";
import { dashboardSuite } from "./harness";

jest.setTimeout(90_000);

/**
 * The example dashboard as people use it: pressing runs while the list updates, on a phone,
 * by keyboard and with a screen reader, and across a server restart.
 */
const suite = dashboardSuite();
const { start, until } = suite;
let page: Page;
beforeEach(() => {
  page = suite.page;
});

const listed = (count: number) =>
  until(`${count} runs listed`, (n) => document.querySelectorAll("li.run").length === n, count);

const detailOf = (id: string) =>
  until(`the detail of ${id}`, (i) => document.getElementById("detail")?.dataset.runId === i, id);

const UNITS = ["api-gateway", "auth-service", "billing", "checkout", "notifications", "payments"];

/**
 * Runs `run-01`.. with names `Deploy #n`, newest (highest n) listed first, each of a team, as
 * the example's runs are (the page's stream token covers the teams' tags).
 */
function createRuns(source: MemoryRunSource, count: number, total = UNITS.length): string[] {
  const ids: string[] = [];
  for (let n = 1; n <= count; n++) {
    const id = `run-${String(n).padStart(2, "0")}`;
    source.createRun({
      id,
      name: `Deploy #${n}`,
      tags: [TEAMS[n % TEAMS.length] as string],
      total_units: total,
      units: Object.fromEntries(UNITS.map((unit) => [unit, "pending"])),
      created_at: `2026-03-02T09:${String(n).padStart(2, "0")}:00Z`,
    });
    ids.push(id);
  }
  return ids;
}

/** Ids of the listed runs, top to bottom. */
const listedIds = (): Promise<string[]> =>
  page.$$eval("li.run", (items) => items.map((li) => li.getAttribute("data-run-id") ?? ""));

describe("the example dashboard, in use", () => {
  it("a press on a run while the list updates many times a second always opens it; no row is replaced", async () => {
    const r = await start();
    const { source } = r.example;
    const ids = createRuns(source, 8, 100_000);
    await page.goto(r.url);
    await listed(8);
    // Count rows taken out of the list from now on: a row under the pointer must never go.
    await page.evaluate(() => {
      const w = window as unknown as { removedRows: number };
      w.removedRows = 0;
      new MutationObserver((records) => {
        for (const record of records) {
          for (const node of Array.from(record.removedNodes))
            if ((node as Element).matches?.("li.run")) w.removedRows++;
        }
      }).observe(document.getElementById("runs") as HTMLElement, { childList: true });
    });

    // Every run advances every few milliseconds: the list re-renders on every animation frame.
    let done = 0;
    const lost: string[] = [];
    const ticker = setInterval(() => {
      done++;
      for (const id of ids) source.updateRun(id, { status: "running", completed_units: done });
    }, 4);
    try {
      const order = await listedIds();
      for (let press = 0; press < 15; press++) {
        const id = order[(press * 3) % order.length] as string;
        const row = page.locator(`li.run[data-run-id="${id}"]`);
        // The box of the row as it is now (a row replaced meanwhile has none: ask again).
        let box = await row.boundingBox();
        for (let attempt = 0; box === null && attempt < 50; attempt++) box = await row.boundingBox();
        if (box === null) throw new Error(`row ${id} is not shown`);
        // A real press: the button stays down 80 ms, through several re-renders.
        await page.mouse.click(box.x + box.width / 3, box.y + box.height / 2, { delay: 80 });
        const opened = await page
          .waitForFunction((i) => document.getElementById("detail")?.dataset.runId === i, id, { timeout: 2_000 })
          .then(() => true)
          .catch(() => false);
        if (!opened) lost.push(id);
      }
    } finally {
      clearInterval(ticker);
    }
    expect(lost).toEqual([]);
    expect(await page.evaluate(() => (window as unknown as { removedRows: number }).removedRows)).toBe(0);
    expect(await listedIds()).toEqual([...ids].reverse());
  });

  it.each([375, 360])(
    "at %i px wide: no horizontal overflow, the header fits, an opened run is in view",
    async (width) => {
      const r = await start();
      const { source } = r.example;
      createRuns(source, 12);
      source.createRun({
        id: "run-with-a-rather-long-identifier-that-does-not-break-by-itself.0123456789",
        name: "Deploy of every service in the eu-central-1 region, canary first",
        tags: ["team:payments"],
        total_units: 2,
        created_at: "2026-03-02T10:00:00Z",
      });
      await page.setViewportSize({ width, height: 740 });
      await page.goto(r.url);
      await listed(13);
      await page.click('li.run[data-run-id="run-03"]');
      await detailOf("run-03");
      source.recordEvent("run-03", {
        type: "unit.failed",
        unit: "checkout",
        error: "readiness probe failed: GET http://checkout.internal:8080/healthz/with/a/long/path timed out",
      });
      await until("the event in the log", () => document.querySelector("#event-log li[data-event-id]") !== null, null);

      const layout = await page.evaluate(() => {
        const outside = Array.from(document.querySelectorAll("body *"))
          .filter((e) => !e.closest("[hidden]") && !e.classList.contains("visually-hidden"))
          .filter((e) => {
            const rect = e.getBoundingClientRect();
            return rect.width > 0 && (rect.left < -0.5 || rect.right > window.innerWidth + 0.5);
          })
          .map((e) => `${e.tagName.toLowerCase()}#${e.id}.${e.className}`);
        const detail = (document.getElementById("detail-title") as HTMLElement).getBoundingClientRect();
        return {
          scrollWidth: document.documentElement.scrollWidth,
          outside,
          detailTitleInView: detail.top >= 0 && detail.bottom <= window.innerHeight,
          focused: document.activeElement?.id,
        };
      });
      expect(layout).toEqual({ scrollWidth: width, outside: [], detailTitleInView: true, focused: "detail-title" });
    },
  );

  it("on a desktop the detail stays in view while a long list is scrolled", async () => {
    const r = await start();
    createRuns(r.example.source, 30);
    await page.setViewportSize({ width: 1280, height: 600 });
    await page.goto(r.url);
    await listed(30);
    await page.click('li.run[data-run-id="run-30"]');
    await detailOf("run-30");
    await page.evaluate(() => window.scrollTo(0, document.documentElement.scrollHeight));
    const view = await page.evaluate(() => {
      const detail = (document.getElementById("detail") as HTMLElement).getBoundingClientRect();
      return { scrolled: window.scrollY > 0, top: detail.top >= 0, bottom: detail.bottom <= window.innerHeight };
    });
    expect(view).toEqual({ scrolled: true, top: true, bottom: true });
  });

  it("by keyboard: Tab reaches the runs, Enter and Space open one, the open run is marked current", async () => {
    const r = await start();
    createRuns(r.example.source, 3);
    await page.goto(r.url);
    await listed(3);
    const focusedRun = () =>
      page.evaluate(() => document.activeElement?.closest("li.run")?.getAttribute("data-run-id") ?? null);
    let presses = 0;
    while ((await focusedRun()) === null) {
      await page.keyboard.press("Tab");
      if (++presses > 10) throw new Error("Tab never reached a run");
    }
    expect(await focusedRun()).toBe("run-03");
    await page.keyboard.press("Enter");
    await detailOf("run-03");
    await page.keyboard.press("Tab");
    expect(await focusedRun()).toBe("run-02");
    await page.keyboard.press("Space");
    await detailOf("run-02");
    expect(await page.textContent("#detail-title")).toBe("Deploy #2");
    const current = await page.$$eval("li.run button[aria-current='true']", (buttons) =>
      buttons.map((b) => b.closest("li")?.getAttribute("data-run-id")),
    );
    expect(current).toEqual(["run-02"]);
    // The row's accessible name is the run's name (and id), not a jumble of its parts.
    expect(await page.locator('li.run[data-run-id="run-02"] button').textContent()).toBe("Deploy #2 run-02");
  });

  it("for screen readers: progress bars carry their values; only a run finishing is announced", async () => {
    const r = await start();
    const { source } = r.example;
    createRuns(source, 2);
    await page.goto(`${r.url}/#run=run-02`);
    await listed(2);
    await until(
      "the detail to be live",
      () => document.getElementById("detail-connection")?.dataset.status === "live",
      null,
    );
    // Everything any live region says, in order.
    await page.evaluate(() => {
      const w = window as unknown as { spoken: string[] };
      w.spoken = [];
      for (const region of Array.from(
        document.querySelectorAll("[aria-live], [role=status], [role=alert], [role=log]"),
      )) {
        new MutationObserver(() => w.spoken.push(region.textContent ?? "")).observe(region, {
          childList: true,
          subtree: true,
          characterData: true,
        });
      }
    });

    source.updateRun("run-02", { status: "running", completed_units: 2 });
    source.recordEvent("run-02", { type: "unit.started", unit: "billing" });
    source.recordEvent("run-02", { type: "unit.completed", unit: "billing", duration_ms: 800 });
    source.updateRun("run-01", { status: "running", completed_units: 1 });
    await until(
      "the progress in the list",
      () =>
        document.querySelector('li.run[data-run-id="run-02"] [role=progressbar]')?.getAttribute("aria-valuenow") ===
        "2",
      null,
    );
    await until("two log lines", () => document.querySelectorAll("#event-log li[data-event-id]").length === 2, null);
    const bars = await page.$$eval("[role=progressbar]", (items) =>
      items.map((bar) => [
        bar.getAttribute("aria-label"),
        bar.getAttribute("aria-valuemin"),
        bar.getAttribute("aria-valuenow"),
        bar.getAttribute("aria-valuemax"),
        bar.getAttribute("aria-valuetext"),
      ]),
    );
    expect(bars).toEqual([
      ["Deploy #2 progress", "0", "2", "6", "2 of 6 units"],
      ["Deploy #1 progress", "0", "1", "6", "1 of 6 units"],
      ["Progress", "0", "2", "6", "2 of 6 units"],
    ]);

    source.completeRun("run-01", { status: "failed", completed_units: 1, error: "billing: image pull failed" });
    await until("the announcement", () => (window as unknown as { spoken: string[] }).spoken.length > 0, null);
    expect(await page.evaluate(() => (window as unknown as { spoken: string[] }).spoken)).toEqual([
      "Deploy #1 failed.",
    ]);
    // The one live region is the announcer: the event log and the detail are not read out as they change.
    expect(
      await page.$$eval("[aria-live], [role=status], [role=alert], [role=log]", (regions) => regions.map((e) => e.id)),
    ).toEqual(["announcer"]);
  });

  it("after a server restart the list holds only the new server's runs, finished ones included, and counts them", async () => {
    const first = await start();
    const old = first.example.source;
    createRuns(old, 3);
    await page.goto(first.url);
    await listed(3);
    // Finished while the page watched: the global stream's client keeps such runs.
    old.completeRun("run-01", { status: "completed", completed_units: 6 });
    old.completeRun("run-02", { status: "failed", completed_units: 2 });
    await until("two finished runs counted", () => document.getElementById("count-failed")?.textContent === "1", null);

    await suite.stop(first);
    await until("reconnecting", () => document.getElementById("connection")?.dataset.status === "reconnecting", null);
    const second = await start({}, first.port);
    const source = second.example.source;
    const web = ["team:web"];
    source.createRun({
      id: "new-1",
      name: "Deploy #101",
      tags: web,
      total_units: 2,
      created_at: "2026-03-02T11:00:00Z",
    });
    source.completeRun("new-1", { status: "completed", completed_units: 2 });
    source.createRun({
      id: "new-2",
      name: "Deploy #102",
      tags: web,
      total_units: 2,
      created_at: "2026-03-02T11:01:00Z",
    });

    await until(
      "only the new server's runs",
      () =>
        Array.from(document.querySelectorAll("li.run"))
          .map((li) => li.getAttribute("data-run-id"))
          .join() === "new-2,new-1",
      null,
    );
    const counts = await page.$$eval("#summary dd", (dds) => dds.map((dd) => `${dd.id}=${dd.textContent}`));
    expect(counts).toEqual(["count-active=1", "count-completed=1", "count-failed=0", "count-units=2"]);
  });
});
