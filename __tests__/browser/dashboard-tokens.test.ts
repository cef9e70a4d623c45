import type { Page } from "playwright-core";
import type { MemoryRunSource } from "../../lib/index";
import { eventually } from "../helpers/server";
import { dashboardSuite, isStreamRequest, type RunningExample, type SeenRequest } from "./harness";

jest.setTimeout(60_000);

/**
 * The example dashboard's stream tokens, as `npm run example` serves it: the page asks
 * `POST /api/stream-token` for a fresh token before every stream connection, the server
 * refuses streams without one, scopes them to the session's teams, and ends them when the
 * token expires.
 */
const suite = dashboardSuite();
const { start, until, pill } = suite;
let page: Page;
beforeEach(() => {
  page = suite.page;
});

function createRun(source: MemoryRunSource, id: string, team: string): void {
  source.createRun({ id, name: `Deploy ${id}`, tags: [team], total_units: 3, created_at: `2026-03-02T09:00:00Z` });
}

/** The stream requests the server received, in order. */
const streamRequests = (r: RunningExample): SeenRequest[] => r.requests.filter(isStreamRequest);
const tokenRequests = (r: RunningExample): SeenRequest[] =>
  r.requests.filter((q) => q.method === "POST" && q.path === "/api/stream-token");

/** Stream requests answered with anything but 200, as `<status> <url>` (the token left out). */
const refusedStreams = (r: RunningExample): string[] =>
  streamRequests(r)
    .filter((q) => q.status !== undefined && q.status !== 200)
    .map((q) => `${q.status} ${q.path}`);

/**
 * Stream requests that used no token minted for them: each stream request must use a token
 * that a `POST /api/stream-token` answered before it, and no other stream request used that
 * answer (a token reused for a second connection is reported).
 */
function unminted(r: RunningExample): string[] {
  const unused = new Map<string, number>();
  const problems: string[] = [];
  for (const q of r.requests) {
    if (q.minted !== undefined) unused.set(q.minted, (unused.get(q.minted) ?? 0) + 1);
    if (!isStreamRequest(q)) continue;
    const left = q.token === undefined ? 0 : (unused.get(q.token) ?? 0);
    if (left === 0) problems.push(`${q.path} (${q.token === undefined ? "no token" : "a token not minted for it"})`);
    else unused.set(q.token as string, left - 1);
  }
  return problems;
}

describe("the example dashboard's stream tokens", () => {
  it("every stream connection carries a token minted for it; a stream without one is 401 invalid_token", async () => {
    const r = await start();
    const { source } = r.example;
    createRun(source, "run-01", "team:web");
    createRun(source, "run-02", "team:payments");
    await page.goto(`${r.url}/#run=run-01`);
    await pill("connection", "live");
    await pill("detail-connection", "live");
    await until("both runs listed", () => document.querySelectorAll("li.run").length === 2, null);

    // A new global stream for the Team filter, then every connection dropped: each reconnect
    // asks for a token of its own.
    await page.selectOption("#tag-filter", "team:web");
    await until("only run-01 listed", () => document.querySelectorAll("li.run").length === 1, null);
    await pill("connection", "live");
    const before = streamRequests(r).length;
    r.drop();
    await eventually(() => streamRequests(r).length >= before + 2, "both streams to reconnect", 15_000);
    source.recordEvent("run-01", { type: "unit.started", unit: "billing" });
    await until(
      "the event after the reconnect",
      () => document.querySelector("#event-log li[data-event-id]") !== null,
      null,
    );
    await pill("connection", "live");
    await pill("detail-connection", "live");

    const streams = streamRequests(r);
    expect(streams.length).toBeGreaterThanOrEqual(5);
    expect(streams.filter((q) => q.token === undefined).map((q) => q.path)).toEqual([]);
    expect(refusedStreams(r)).toEqual([]);
    expect(tokenRequests(r).length).toBeGreaterThanOrEqual(streams.length);
    expect(unminted(r)).toEqual([]);
    // The global stream kept its filter through the new tokens.
    const global = new URL(streams.filter((q) => q.path === "/api/stream").at(-1)?.url ?? "", r.url);
    expect(global.searchParams.get("tags")).toBe("team:web");

    // Without a token, or with one the server did not sign, a stream is refused.
    for (const path of ["/api/stream", "/api/runs/run-01/stream", "/api/stream?token=not.a.token"]) {
      const refused = await fetch(`${r.url}${path}`, { headers: { Accept: "text/event-stream" } });
      expect({ path, status: refused.status, body: await refused.json() }).toEqual({
        path,
        status: 401,
        body: { error: expect.objectContaining({ code: "invalid_token" }) },
      });
    }
  });

  it("with tokens that live 3 s, the open run's log stays exact across expiries: the page resumes with new ones", async () => {
    const r = await start({ tokenLifetimeSeconds: 3 });
    const { source } = r.example;
    createRun(source, "run-01", "team:data");
    source.updateRun("run-01", { status: "running", started_at: "2026-03-02T09:00:01Z" });
    source.recordEvent("run-01", { type: "unit.started", unit: "step-0" });
    await page.goto(`${r.url}/#run=run-01`);
    await pill("detail-connection", "live");

    // Events keep coming, also while a stream is between an expired token and the next one.
    let n = 0;
    const writer = setInterval(() => source.recordEvent("run-01", { type: "unit.started", unit: `step-${++n}` }), 100);
    const runStreams = () => streamRequests(r).filter((q) => q.path === "/api/runs/run-01/stream");
    try {
      await eventually(() => runStreams().length >= 4, "three expiries of the run's stream", 30_000);
    } finally {
      clearInterval(writer);
    }
    source.recordEvent("run-01", { type: "unit.completed", unit: "last" });
    const expected = [...Array.from({ length: n + 1 }, (_, i) => `unit.started step-${i}`), "unit.completed last"];
    await until(
      `${expected.length} event log lines`,
      (count) => document.querySelectorAll("#event-log li[data-event-id]").length >= count,
      expected.length,
    );
    const log = await page.$$eval("#event-log li[data-event-id]", (items) => ({
      lines: items.map((li) => `${li.getAttribute("data-type")} ${li.querySelector(".what")?.textContent ?? ""}`),
      ids: items.map((li) => li.getAttribute("data-event-id") ?? ""),
    }));
    expect(log.lines).toEqual(expected);
    expect(new Set(log.ids).size).toBe(expected.length);

    // The server ended the streams at expiry; each reconnect resumed, with a token of its own.
    expect(r.example.router.stats().clientsEnded.token_expiry).toBeGreaterThanOrEqual(3);
    const streams = runStreams();
    expect(streams.slice(1).filter((q) => q.lastEventId === undefined)).toEqual([]);
    expect(new Set(streams.map((q) => q.token)).size).toBe(streams.length);
    expect(refusedStreams(r)).toEqual([]);
    expect(unminted(r)).toEqual([]);
  });

  it("a session of one team: its tokens show that team's runs only, and another team's run is refused", async () => {
    const r = await start({ sessionTeams: ["team:web"] });
    const { source } = r.example;
    createRun(source, "run-01", "team:web");
    createRun(source, "run-02", "team:payments");
    await page.goto(`${r.url}/#run=run-02`);
    await pill("connection", "live");
    await until("run-01 listed", () => document.querySelector('li.run[data-run-id="run-01"]') !== null, null);
    await until("the refusal of run-02", () => document.getElementById("detail-notice")?.hidden === false, null);
    expect(await page.textContent("#detail-notice")).toContain("Not yours to see");
    expect(r.requests.find((q) => q.path === "/api/runs/run-02/stream")?.status).toBe(403);

    // Live too: the other team's new run never reaches the page; the next of its own team does.
    createRun(source, "run-03", "team:payments");
    createRun(source, "run-04", "team:web");
    await until("run-04 listed", () => document.querySelector('li.run[data-run-id="run-04"]') !== null, null);
    expect(await page.$$eval("li.run", (items) => items.map((li) => li.getAttribute("data-run-id")))).toEqual([
      "run-04",
      "run-01",
    ]);
  });

  it("a failing token request shows on the connection pills, and the page connects once tokens come back", async () => {
    const r = await start();
    const { source } = r.example;
    createRun(source, "run-01", "team:web");
    r.failTokens = true;
    await page.goto(`${r.url}/#run=run-01`);
    for (const id of ["connection", "detail-connection"]) {
      await until(
        `#${id} to say the token failed`,
        (i) => {
          const shown = document.getElementById(i);
          return shown?.dataset.status === "reconnecting" && shown.dataset.problem === "token";
        },
        id,
      );
      expect(await page.textContent(`#${id}`)).toBe("no stream token, retrying…");
    }
    expect(streamRequests(r)).toEqual([]);
    expect(tokenRequests(r).map((q) => q.status)).toContain(503);

    r.failTokens = false;
    await pill("connection", "live");
    await pill("detail-connection", "live");
    source.recordEvent("run-01", { type: "unit.started", unit: "billing" });
    await until("the event", () => document.querySelector("#event-log li[data-event-id]") !== null, null);
    for (const id of ["connection", "detail-connection"]) {
      expect(await page.$eval(`#${id}`, (shown) => [shown.textContent, shown.getAttribute("data-problem")])).toEqual([
        "live",
        null,
      ]);
    }
  });
});
