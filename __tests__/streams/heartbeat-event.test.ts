import { EventSource } from "eventsource";
import { MemoryRunSource } from "../../lib/index";
import { get } from "../helpers/http-get";
import { eventually, serve, type TestServer, within } from "../helpers/server";
import { SseStream } from "../helpers/sse";

const HEARTBEAT_MS = 40;

describe("?heartbeat=event", () => {
  let source: MemoryRunSource;
  let t: TestServer;

  beforeEach(async () => {
    source = new MemoryRunSource();
    source.createRun({ id: "r" });
    t = await serve(source, { heartbeatMs: HEARTBEAT_MS });
  });
  afterEach(() => t.close());

  it.each([
    ["per-run", "/api/runs/r/stream"],
    ["global", "/api/stream"],
  ])("the %s stream sends id-less `heartbeat` frames with the interval, and no comments", async (_, path) => {
    const stream = await SseStream.open(`${t.url}${path}?heartbeat=event`);
    await stream.until(() => stream.of("heartbeat").length >= 3, "three heartbeat frames");
    source.recordEvent("r", { type: "unit.started" });
    await stream.until(() => stream.of("event").length === 1, "the event");
    for (const beat of stream.of("heartbeat")) {
      expect(beat.id).toBeUndefined();
      expect(beat.json).toEqual({ intervalMs: HEARTBEAT_MS });
    }
    expect(stream.comments).toEqual([]);
    // The bytes: a whole frame of its own, `event:` then `data:`, no `id:` line.
    expect(stream.raw).toMatch(/(^|\n)event: heartbeat\ndata: \{"intervalMs":40\}\n\n/);
    expect(stream.raw).not.toMatch(/id: [^\n]*\n(data: \{"intervalMs)/);
    // The snapshot still comes first, as for any client.
    expect(stream.frames[0]?.event).toBe("state");
    expect(stream.frames.filter((f) => f.event !== "heartbeat").map((f) => f.event)).toEqual(["state", "event"]);
    stream.close();
  });

  it("a plain client, which does not ask, still gets comment heartbeats and no heartbeat frame", async () => {
    const stream = await SseStream.open(`${t.url}/api/runs/r/stream`);
    await stream.until(() => stream.comments.length >= 3, "three heartbeat comments");
    expect(stream.of("heartbeat")).toEqual([]);
    expect(stream.raw).not.toContain("heartbeat");
    stream.close();
  });

  it("reaches a page through the eventsource package as `heartbeat` events, and leaves its resume point alone", async () => {
    // A server of its own, whose streams end soon, to see the id the client resumes from.
    const resumes: Array<string | undefined> = [];
    const own = await serve(source, { heartbeatMs: HEARTBEAT_MS, retryMs: 20, maxStreamMs: 400 }, (app) =>
      app.use((req, _res, next) => {
        resumes.push(req.get("last-event-id"));
        next();
      }),
    );
    const es = new EventSource(`${own.url}/api/runs/r/stream?heartbeat=event`);
    try {
      const beats = await within(
        new Promise<MessageEvent[]>((resolve) => {
          const got: MessageEvent[] = [];
          es.addEventListener("heartbeat", (e) => {
            got.push(e as MessageEvent);
            if (got.length === 3) resolve(got);
          });
        }),
        "three heartbeat events",
      );
      for (const beat of beats) expect(JSON.parse(beat.data as string)).toEqual({ intervalMs: HEARTBEAT_MS });
      // The stream ends (maxStreamMs) and the client reconnects from the snapshot's cursor: heartbeats carry no id.
      await eventually(() => resumes.length >= 2, "the reconnect");
      expect(resumes[0]).toBeUndefined();
      expect(resumes[1]).toBe(source.lastId);
    } finally {
      es.close();
      await own.close();
    }
  });

  it.each(["heartbeat=comment", "heartbeat=", "heartbeat=EVENT", "heartbeat=event&heartbeat=event"])(
    "?%s is refused with 400 invalid_query, on both streams",
    async (query) => {
      for (const path of ["/api/runs/r/stream", "/api/stream"]) {
        const res = await get(`${t.url}${path}?${query}`);
        expect(res.status).toBe(400);
        expect(res.type).toContain("application/json");
        expect(JSON.parse(res.body)).toEqual({ error: { code: "invalid_query", message: expect.any(String) } });
      }
      expect(t.router.clientCount()).toBe(0);
    },
  );
});
