import { EventSource } from "eventsource";
import { MemoryRunSource } from "../../lib/index";
import { serve, type TestServer, within } from "../helpers/server";

describe("with a real EventSource client", () => {
  let source: MemoryRunSource;
  let t: TestServer;
  const requests: Array<{ path: string; lastEventId: string | undefined; status?: number }> = [];

  beforeEach(async () => {
    requests.length = 0;
    source = new MemoryRunSource();
    t = await serve(source, { heartbeatMs: 60_000, retryMs: 10 }, (app) =>
      app.use((req, res, next) => {
        const entry: (typeof requests)[number] = { path: req.path, lastEventId: req.get("last-event-id") };
        requests.push(entry);
        res.on("finish", () => {
          entry.status = res.statusCode;
        });
        next();
      }),
    );
  });
  afterEach(() => t.close());

  it("gets state, events and complete; its automatic reconnect gets 204 and it stops for good", async () => {
    source.createRun({ id: "r", total_units: 1 });
    const es = new EventSource(`${t.url}/api/runs/r/stream`);
    const got: string[] = [];
    const closed = new Promise<void>((resolve) => {
      for (const type of ["state", "event", "complete"]) {
        es.addEventListener(type, (e) => {
          got.push(`${type}:${(e as MessageEvent).lastEventId}`);
          if (type === "state") {
            source.recordEvent("r", { type: "unit.started", unit: "only" });
            source.completeRun("r", { status: "completed", completed_units: 1 });
          }
        });
      }
      // After `complete` the server ends the response; the client reconnects, gets 204 and closes.
      es.onerror = () => {
        if (es.readyState === EventSource.CLOSED) resolve();
      };
    });
    await within(closed, "the EventSource to close itself");
    const complete = source.getCompletion("r");
    expect(got.map((g) => g.split(":")[0])).toEqual(["state", "event", "complete"]);
    expect(got[2]).toBe(`complete:${complete?.id}`);
    expect(requests.map((r) => [r.lastEventId, r.status])).toEqual([
      [undefined, 200],
      [complete?.id, 204],
    ]);
    es.close();
  });

  it("reconnects by itself after the server drops it, and sees each event exactly once", async () => {
    source.createRun({ id: "r" });
    const es = new EventSource(`${t.url}/api/runs/r/stream`);
    const ns: number[] = [];
    let opened = 0;
    const done = new Promise<void>((resolve) => {
      es.addEventListener("open", () => {
        opened++;
        // Record while nobody is connected on the second open's way in, then drop the first connection.
        if (opened === 1) {
          source.recordEvent("r", { type: "unit.progress", n: 0 });
        }
      });
      es.addEventListener("event", (e) => {
        const n = JSON.parse((e as MessageEvent).data).n as number;
        ns.push(n);
        if (n === 0) {
          t.server.closeAllConnections();
          source.recordEvent("r", { type: "unit.progress", n: 1 });
          source.recordEvent("r", { type: "unit.progress", n: 2 });
        }
        if (n === 2 && opened === 2) resolve();
      });
    });
    await within(done, "events 0, 1, 2 across a reconnect");
    expect(ns).toEqual([0, 1, 2]);
    expect(requests[1]?.lastEventId).toBeDefined();
    es.close();
  });
});
