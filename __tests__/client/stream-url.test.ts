import { type AllRunsWatcher, type RunWatcher, watchAll, watchRun } from "../../lib/client";
import { eventually } from "../helpers/server";
import { Recorder, trackedEventSource } from "./harness";
import { runEvent, runState, sseFrame, type WireRequest, WireServer } from "./wire-server";

/** Answers like runcast before a stream starts: a JSON error body. */
function refuse(req: WireRequest, status: number, code: string): void {
  req.res.writeHead(status, { "Content-Type": "application/json" });
  req.res.end(JSON.stringify({ error: { code, message: "refused" } }));
}

describe("runcast/client stream URLs: filters, URL functions, tokens", () => {
  let wire: WireServer;
  let watcher: RunWatcher | AllRunsWatcher | undefined;

  afterEach(async () => {
    watcher?.close();
    watcher = undefined;
    await wire.close();
  });

  it("watchAll asks for ?tags= and ?runs=, each list comma-separated, beside the URL's own query", async () => {
    wire = await WireServer.start((req) => {
      WireServer.open(req.res);
      req.res.write(sseFrame("state", runState("run.1", 0), "1"));
    });
    const rec = new Recorder();
    watcher = watchAll(`${wire.url}/api/stream?x=1`, rec.all(), {
      ...trackedEventSource(),
      tags: ["team:web", "user:42"],
      runs: ["run.1", "run_2"],
      types: ["unit.started"],
    });
    await eventually(() => rec.states.length === 1, "the first frame");
    const query = wire.requests[0]?.url.searchParams;
    expect(query?.get("x")).toBe("1");
    expect(query?.get("tags")).toBe("team:web,user:42");
    expect(query?.get("runs")).toBe("run.1,run_2");
    expect(query?.get("types")).toBe("unit.started");
    // Literal commas between items, each item encoded on its own.
    expect(wire.requests[0]?.url.search).toContain("runs=run.1,run_2");
  });

  it("calls a URL function for every (re)connect: each connection has a fresh token and resumes after the last id", async () => {
    wire = await WireServer.start((req) => {
      if (req.n === 1) {
        // The token the page minted in time but the server took as expired: one more try.
        refuse(req, 401, "token_expired");
        return;
      }
      WireServer.open(req.res);
      if (req.n === 0) {
        // The server ends a stream when its token expires.
        req.res.end(sseFrame("state", runState("r", 0), "1") + sseFrame("event", runEvent("r", 0), "2"));
      } else req.res.write(sseFrame("event", runEvent("r", 1), "3"));
    });
    let minted = 0;
    const url = async (): Promise<string> => {
      await new Promise((resolve) => setImmediate(resolve));
      minted++;
      return `${wire.url}/api/runs/r/stream?token=tok-${minted}`;
    };
    const rec = new Recorder();
    watcher = watchRun(url, rec.run(), { ...trackedEventSource(), retryMs: 10 });
    await eventually(() => rec.events.length === 2, "the event after two reconnects");

    expect(wire.requests.map((r) => [r.url.searchParams.get("token"), r.lastEventId])).toEqual([
      ["tok-1", undefined],
      ["tok-2", "2"],
      ["tok-3", "2"],
    ]);
    expect(rec.ns).toEqual([0, 1]);
    expect(rec.errors.map((e) => [e.code, e.status])).toEqual([["stream_failed", 401]]);
    expect(rec.statuses).toEqual(["live", "reconnecting", "live"]);
  });

  it("a URL function that throws or rejects is reported as url_failed (with its error as cause) and tried again", async () => {
    wire = await WireServer.start((req) => {
      WireServer.open(req.res);
      req.res.write(sseFrame("state", runState("r", 0), "1"));
    });
    const failures = [new Error("no session"), new Error("mint service down")];
    let calls = 0;
    const url = (): string | Promise<string> => {
      calls++;
      const failure = failures.shift();
      if (failure === undefined) return `${wire.url}/api/runs/r/stream`;
      if (calls === 1) throw failure;
      return Promise.reject(failure);
    };
    const rec = new Recorder();
    watcher = watchRun(url, rec.run(), { ...trackedEventSource(), retryMs: 10 });
    await eventually(() => rec.states.length === 1, "the stream once the URL function works");
    expect(calls).toBe(3);
    expect(rec.errors.map((e) => [e.code, (e.cause as Error).message])).toEqual([
      ["url_failed", "no session"],
      ["url_failed", "mint service down"],
    ]);
    expect(rec.statuses).toEqual(["reconnecting", "live"]);
  });

  it("a second 401 in a row closes the watcher: a URL function gets one fresh try, a plain URL none", async () => {
    wire = await WireServer.start((req) => refuse(req, 401, "invalid_token"));
    const rec = new Recorder();
    const w = watchRun(() => `${wire.url}/api/runs/r/stream?token=t`, rec.run(), {
      ...trackedEventSource(),
      retryMs: 10,
    });
    watcher = w;
    await eventually(() => w.status === "closed", "the watcher to close");
    expect(rec.errors.map((e) => [e.code, e.status])).toEqual([
      ["stream_failed", 401],
      ["stream_refused", 401],
    ]);
    expect(wire.requests).toHaveLength(2);
  });

  it("never puts a token into an error message or a status, whatever fails", async () => {
    const token = "eyJhbGciOiJIUzI1NiJ9.c2NvcGU.s3cr3t-signature";
    wire = await WireServer.start((req) => {
      if (req.url.pathname === "/refused") return refuse(req, 401, "invalid_token");
      if (req.n === 0) return refuse(req, 503, "unavailable");
      WireServer.open(req.res);
      req.res.write(`event: state\nid: 1\ndata: not json ${token}\n\n`);
      req.res.write(sseFrame("state", runState("r", 0), "2"));
    });
    const rec = new Recorder();
    let calls = 0;
    const url = (): string => {
      calls++;
      if (calls === 2) throw new TypeError("the page's own failure");
      return `${wire.url}/api/runs/r/stream?token=${token}`;
    };
    watcher = watchRun(url, rec.run(), { ...trackedEventSource(), retryMs: 10 });
    await eventually(() => rec.states.length === 1, "the stream after a 503 and a failing URL function");
    const refusedRec = new Recorder();
    const refused = watchRun(`${wire.url}/refused?token=${encodeURIComponent(token)}`, refusedRec.run(), {
      ...trackedEventSource(),
      retryMs: 10,
    });
    await eventually(() => refused.status === "closed", "the refusal");

    const errors = [...rec.errors, ...refusedRec.errors];
    expect(errors.map((e) => e.code)).toEqual(["stream_failed", "url_failed", "invalid_frame", "stream_refused"]);
    // The server did get the token: the watcher used it, and told nobody.
    expect(wire.requests.every((r) => r.url.searchParams.get("token") === token)).toBe(true);
    for (const error of errors) {
      const text = [error.message, String(error), error.stack, JSON.stringify(error), error.serverCode].join("\n");
      // The one exception is an invalid frame's own data, which the server sent.
      const shown = error.code === "invalid_frame" ? text.replaceAll(error.frame?.data ?? "", "") : text;
      expect(shown).not.toContain("s3cr3t");
      expect(shown).not.toContain("token=");
    }
    expect([...rec.statuses, ...refusedRec.statuses].join(" ")).not.toContain("s3cr3t");
  });
});
