import { mkdirSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Page } from "playwright-core";
import { TEAMS } from "../../examples/orchestrator";
import type { MemoryRunSource } from "../../lib/index";
import { dashboardSuite } from "./harness";

jest.setTimeout(60_000);

const suite = dashboardSuite();
const { start, until, pill } = suite;
let page: Page;
beforeEach(() => {
  page = suite.page;
});

const logLines = (count: number) =>
  until(
    `${count} event log lines`,
    (n) => document.querySelectorAll("#event-log li[data-event-id]").length >= n,
    count,
  );

/** The event log: one `<type> <unit>` line per event, and each line's envelope id. */
async function eventLog(): Promise<{ lines: string[]; ids: string[] }> {
  return page.$$eval("#event-log li[data-event-id]", (items) => ({
    lines: items.map((li) => `${li.getAttribute("data-type")} ${li.querySelector(".what")?.textContent ?? ""}`),
    ids: items.map((li) => li.getAttribute("data-event-id") ?? ""),
  }));
}

async function runRow(id: string): Promise<{ status: string; units: string } | null> {
  return page
    .$eval(`li.run[data-run-id="${id}"]`, (li) => ({
      status: li.getAttribute("data-status") ?? "",
      units: li.querySelector(".units-count")?.textContent ?? "",
    }))
    .catch(() => null);
}

const UNITS = ["auth-service", "billing", "checkout"];

/** A run of team:web, as the example's runs each belong to a team (the page's token covers the teams' tags). */
function createRun(source: MemoryRunSource, id: string, name: string): void {
  source.createRun({
    id,
    name,
    tags: ["team:web"],
    total_units: UNITS.length,
    units: Object.fromEntries(UNITS.map((unit) => [unit, "pending"])),
    created_at: `2026-03-02T09:${id.slice(-2)}:00Z`,
  });
}

describe("the example dashboard in Chromium", () => {
  it("shows each run's team tag and narrows the list to one team through the server's filter", async () => {
    const r = await start();
    const { source } = r.example;
    const streams: string[] = [];
    r.server.on("request", (req) => {
      if (req.method === "GET" && req.url?.startsWith("/api/stream?")) streams.push(req.url);
    });
    source.createRun({ id: "run-11", name: "Web #1", tags: ["team:web"], created_at: "2026-03-02T09:11:00Z" });
    source.createRun({ id: "run-12", name: "Pay #1", tags: ["team:payments"], created_at: "2026-03-02T09:12:00Z" });
    source.createRun({ id: "run-13", name: "Web #2", tags: ["team:web"], created_at: "2026-03-02T09:13:00Z" });
    source.completeRun("run-13", { status: "completed", completed_units: 0 });
    await page.goto(r.url);
    await pill("connection", "live");
    await until("three runs listed", () => document.querySelectorAll("li.run").length === 3, null);
    expect(await page.textContent('li.run[data-run-id="run-12"] .tags')).toBe("team:payments");

    await page.selectOption("#tag-filter", "team:web");
    await until(
      "only team:web's runs",
      () =>
        Array.from(document.querySelectorAll("li.run"), (li) => li.getAttribute("data-run-id")).join() ===
        "run-13,run-11",
      null,
    );
    // The server narrowed the stream: the page asked for ?tags=team:web, and a new run of
    // another team never shows up.
    await pill("connection", "live");
    expect(new URL(streams.at(-1) ?? "", r.url).searchParams.get("tags")).toBe("team:web");
    source.createRun({ id: "run-14", name: "Pay #2", tags: ["team:payments"], created_at: "2026-03-02T09:14:00Z" });
    source.createRun({ id: "run-15", name: "Web #3", tags: ["team:web"], created_at: "2026-03-02T09:15:00Z" });
    await until("run-15 listed", () => document.querySelector('li.run[data-run-id="run-15"]') !== null, null);
    expect(await page.$('li.run[data-run-id="run-14"]')).toBeNull();

    await page.selectOption("#tag-filter", "");
    await until("every run again", () => document.querySelectorAll("li.run").length === 5, null);
  });

  it("a run opened late, or after it finished, shows its whole event log with timings", async () => {
    const r = await start();
    const { source } = r.example;
    createRun(source, "run-07", "Deploy #7");
    source.updateRun("run-07", { status: "running", started_at: "2026-03-02T09:07:00Z" });
    for (const [i, unit] of UNITS.entries()) {
      source.recordEvent("run-07", { type: "unit.started", unit, ts: `2026-03-02T09:07:0${2 * i}Z` });
      source.recordEvent("run-07", { type: "unit.completed", unit, ts: `2026-03-02T09:07:0${2 * i + 1}Z` });
    }
    createRun(source, "run-08", "Deploy #8");
    source.recordEvent("run-08", { type: "unit.started", unit: "billing" });
    source.completeRun("run-08", { status: "failed", completed_units: 0, error: "billing: out of memory" });
    await page.goto(r.url);
    await pill("connection", "live");

    // Opened after six events happened: all six, in order, with their offset from the run's start.
    await until("run-07 listed", () => document.querySelector('li.run[data-run-id="run-07"]') !== null, null);
    await page.click('li.run[data-run-id="run-07"]');
    await logLines(6);
    const late = await eventLog();
    expect(late.lines).toEqual(UNITS.flatMap((unit) => [`unit.started ${unit}`, `unit.completed ${unit}`]));
    expect(await page.$$eval("#event-log li[data-event-id] .since", (s) => s.map((n) => n.textContent))).toEqual([
      "+0:00",
      "+0:01",
      "+0:02",
      "+0:03",
      "+0:04",
      "+0:05",
    ]);
    // Live events follow the history, once.
    source.recordEvent("run-07", { type: "unit.failed", unit: "checkout", ts: "2026-03-02T09:08:10Z" });
    await logLines(7);
    expect((await eventLog()).lines.at(-1)).toBe("unit.failed checkout");
    expect(new Set((await eventLog()).ids).size).toBe(7);

    // A finished run: its whole log, then how it ended.
    await page.click('li.run[data-run-id="run-08"]');
    await logLines(1);
    await until("the end of run-08", () => document.querySelector("#event-log li.marker") !== null, null);
    expect((await eventLog()).lines).toEqual(["unit.started billing"]);
    expect(await page.textContent("#event-log li.marker")).toBe("Run failed: billing: out of memory.");
    expect(await page.textContent("#event-log-title")).toBe("Event log");
  });

  it("lists runs from the global stream, then shows one run's state, live events and complete", async () => {
    const r = await start();
    const { source } = r.example;
    createRun(source, "run-01", "Deploy #1");
    source.completeRun("run-01", { status: "completed", completed_units: 3 });
    createRun(source, "run-02", "Deploy #2");
    await page.goto(r.url);

    await pill("connection", "live");
    await until("both runs listed", () => document.querySelectorAll("li.run").length === 2, null);
    // run-01 finished before the page opened: the list has it from the JSON API.
    expect(await runRow("run-01")).toEqual({ status: "completed", units: "3/3 units" });
    expect(await runRow("run-02")).toEqual({ status: "pending", units: "0/3 units" });

    await page.click('li.run[data-run-id="run-02"]');
    await pill("detail-connection", "live");
    expect(await page.textContent("#detail-title")).toBe("Deploy #2");
    expect(await page.textContent("#detail-status")).toBe("pending");

    source.updateRun("run-02", { status: "running", units: { ...pendingUnits(), "auth-service": "running" } });
    source.recordEvent("run-02", { type: "unit.started", unit: "auth-service" });
    source.recordEvent("run-02", { type: "unit.completed", unit: "auth-service", duration_ms: 1200 });
    source.updateRun("run-02", { completed_units: 1, units: { ...pendingUnits(), "auth-service": "completed" } });
    await logLines(2);
    await until(
      "the run's progress in the list",
      () => document.querySelector('li.run[data-run-id="run-02"] .units-count')?.textContent === "1/3 units",
      null,
    );
    expect((await eventLog()).lines).toEqual(["unit.started auth-service", "unit.completed auth-service · 1.2 s"]);
    expect(await page.getAttribute('#units li[data-unit="auth-service"]', "data-status")).toBe("completed");
    expect(await page.textContent("#count-active")).toBe("1");

    source.completeRun("run-02", { status: "failed", completed_units: 1, error: "billing: image pull failed" });
    await pill("detail-connection", "closed");
    expect(await page.textContent("#detail-status")).toBe("failed");
    await until(
      "the failed run in the list",
      () => document.querySelector('li.run[data-run-id="run-02"]')?.getAttribute("data-status") === "failed",
      null,
    );
    expect(await page.textContent("#count-failed")).toBe("1");
    expect(await page.textContent("#event-log li.marker")).toBe("Run failed: billing: image pull failed.");
    // The per-run stream was requested once: after complete the page closed it for good.
    expect(r.requests.filter((q) => q.path === "/api/runs/run-02/stream")).toHaveLength(1);
  });

  it("after the server drops the streams, reconnects by itself and logs each event exactly once", async () => {
    const r = await start();
    const { source } = r.example;
    createRun(source, "run-01", "Deploy #1");
    await page.goto(`${r.url}/#run=run-01`);
    await pill("connection", "live");
    await pill("detail-connection", "live");
    source.recordEvent("run-01", { type: "unit.started", unit: "auth-service" });
    source.recordEvent("run-01", { type: "unit.started", unit: "billing" });
    await logLines(2);

    // Every connection goes; what is recorded meanwhile reaches the page only through its reconnect.
    r.drop();
    source.recordEvent("run-01", { type: "unit.completed", unit: "auth-service", duration_ms: 800 });
    source.updateRun("run-01", { status: "running", completed_units: 1 });
    source.recordEvent("run-01", { type: "unit.failed", unit: "billing", error: "readiness probe failed" });
    await logLines(4);
    await pill("detail-connection", "live");
    await pill("connection", "live");
    source.recordEvent("run-01", { type: "unit.started", unit: "checkout" });
    await logLines(5);

    const log = await eventLog();
    expect(log.lines).toEqual([
      "unit.started auth-service",
      "unit.started billing",
      "unit.completed auth-service · 0.8 s",
      "unit.failed billing · readiness probe failed",
      "unit.started checkout",
    ]);
    expect(new Set(log.ids).size).toBe(5);
    // The browser resumed by itself, sending the id of the last event it had.
    const resumed = r.requests.filter((q) => q.path === "/api/runs/run-01/stream" && q.lastEventId !== undefined);
    expect(resumed.length).toBeGreaterThan(0);
    expect(new Set(resumed.map((q) => q.lastEventId))).toEqual(new Set([log.ids[1]]));
    expect(await runRow("run-01")).toEqual({ status: "running", units: "1/3 units" });
  });

  it("after a server restart, shows the new server's runs and says the open run is gone", async () => {
    const first = await start();
    createRun(first.example.source, "run-01", "Deploy #1");
    createRun(first.example.source, "run-02", "Deploy #2");
    await page.goto(`${first.url}/#run=run-01`);
    await pill("detail-connection", "live");
    await until("both runs listed", () => document.querySelectorAll("li.run").length === 2, null);

    await suite.stop(first);
    await pill("connection", "reconnecting");
    const second = await start({}, first.port);
    createRun(second.example.source, "run-09", "Deploy #9");

    await until(
      "only the new server's run listed",
      () =>
        Array.from(document.querySelectorAll("li.run"))
          .map((li) => li.getAttribute("data-run-id"))
          .join() === "run-09",
      null,
    );
    await pill("connection", "live");
    await until(
      "the notice that run-01 is gone",
      () => document.getElementById("detail-notice")?.hidden === false,
      null,
    );
    expect(await page.textContent("#detail-notice")).toContain("no longer knows this run");
  });

  it("renders the dashboard: docs/dashboard.png", async () => {
    const r = await start();
    const { source } = r.example;
    const all = ["api-gateway", "auth-service", "billing", "checkout", "notifications", "payments"];
    const units = (done: number, failed?: number) =>
      Object.fromEntries(
        all.map((unit, i) => [
          unit,
          i === failed ? "failed" : i < done ? "completed" : i < done + 2 ? "running" : "pending",
        ]),
      );
    const make = (n: number, extra: Record<string, unknown> = {}) =>
      source.createRun({
        id: `run-demo-${n}`,
        name: `Deploy #${n}`,
        tags: [TEAMS[n % TEAMS.length] as string],
        total_units: all.length,
        units: units(0),
        created_at: `2026-03-02T09:${String(10 + n).padStart(2, "0")}:00Z`,
        started_at: `2026-03-02T09:${String(10 + n).padStart(2, "0")}:01Z`,
        ...extra,
      });
    for (const n of [1, 2, 3]) make(n);
    source.completeRun("run-demo-1", { status: "completed", completed_units: 6, units: units(6) });
    source.completeRun("run-demo-2", {
      status: "failed",
      completed_units: 3,
      units: { ...units(3, 3), notifications: "skipped", payments: "skipped" },
      error: "checkout: health check timed out",
    });
    source.updateRun("run-demo-3", { status: "running", completed_units: 5, units: units(5) });
    make(4);
    source.updateRun("run-demo-4", { status: "running", completed_units: 2, units: units(2) });
    make(5);

    await page.goto(`${r.url}/#run=run-demo-4`);
    await pill("connection", "live");
    await pill("detail-connection", "live");
    const at = (second: number) => `2026-03-02T09:14:${String(second).padStart(2, "0")}Z`;
    source.recordEvent("run-demo-4", { type: "unit.started", unit: "billing", ts: at(5) });
    source.recordEvent("run-demo-4", { type: "unit.started", unit: "checkout", ts: at(6) });
    source.recordEvent("run-demo-4", { type: "unit.completed", unit: "billing", duration_ms: 2140, ts: at(8) });
    source.updateRun("run-demo-4", { completed_units: 3, units: { ...units(3), checkout: "running" } });
    source.recordEvent("run-demo-4", { type: "unit.started", unit: "notifications", ts: at(8) });
    source.recordEvent("run-demo-4", {
      type: "unit.failed",
      unit: "checkout",
      error: "readiness probe failed",
      ts: at(11),
    });
    source.updateRun("run-demo-4", {
      units: { ...units(3, 3), notifications: "running", payments: "pending" },
    });
    source.updateRun("run-demo-5", { status: "running", units: { ...units(0), "api-gateway": "running" } });
    await logLines(5);
    await until(
      "the list to show every run",
      () =>
        document.querySelectorAll("li.run").length === 5 &&
        document.querySelector('li.run[data-run-id="run-demo-5"]')?.getAttribute("data-status") === "running",
      null,
    );
    // Progress bars animate their width: wait until they have settled.
    await until("progress bars to settle", () => document.getAnimations().length === 0, null);
    await page.mouse.move(0, 0);
    // The README's picture is rewritten on request only (RUNCAST_UPDATE_SCREENSHOT=1), so a test
    // run leaves the checkout as it found it.
    const docs =
      process.env.RUNCAST_UPDATE_SCREENSHOT === "1"
        ? join(__dirname, "..", "..", "docs")
        : mkdtempSync(join(tmpdir(), "runcast-screenshot-"));
    mkdirSync(docs, { recursive: true });
    // The page's own height: a viewport just tall enough for the (sticky, viewport-high at most)
    // detail panel to show all it holds, captured in full.
    const needed = await page.evaluate(() => {
      const detail = document.getElementById("detail") as HTMLElement;
      return Math.ceil(detail.getBoundingClientRect().top + window.scrollY + detail.scrollHeight + 24);
    });
    await page.setViewportSize({ width: 1280, height: Math.max(400, needed) });
    await page.screenshot({ path: join(docs, "dashboard.png"), animations: "disabled", fullPage: true });
    const png = readFileSync(join(docs, "dashboard.png"));
    expect(png.subarray(0, 8)).toEqual(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]));
    expect(png.length).toBeGreaterThan(10_000);
  });
});

function pendingUnits(): Record<string, string> {
  return Object.fromEntries(UNITS.map((unit) => [unit, "pending"]));
}
