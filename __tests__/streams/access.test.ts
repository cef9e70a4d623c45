import type { Request } from "express";
import request from "supertest";
import { MemoryRunSource } from "../../lib/index";
import { serve, type TestServer } from "../helpers/server";
import { SseStream } from "../helpers/sse";

describe("access control, limits and filters", () => {
  let source: MemoryRunSource;

  beforeEach(() => {
    source = new MemoryRunSource();
    source.createRun({ id: "open" });
    source.createRun({ id: "secret" });
  });

  describe("authorize", () => {
    let t: TestServer;
    const asked: Array<string | null> = [];
    beforeEach(async () => {
      asked.length = 0;
      t = await serve(source, {
        authorize: async (req: Request, runId) => {
          asked.push(runId);
          return req.get("authorization") === "Bearer ok" && runId !== "secret";
        },
      });
    });
    afterEach(() => t.close());

    it("refuses with 403 forbidden, on either stream, and is told which run is asked for", async () => {
      const a = await request(t.url).get("/api/runs/open/stream").expect(403);
      expect(a.body.error.code).toBe("forbidden");
      await request(t.url).get("/api/stream").expect(403);
      await request(t.url).get("/api/runs/secret/stream").set("Authorization", "Bearer ok").expect(403);
      expect(asked).toEqual(["open", null, "secret"]);
    });

    it("lets an allowed client in", async () => {
      const s = await SseStream.open(`${t.url}/api/runs/open/stream`, { Authorization: "Bearer ok" });
      await s.frameCount(1);
      expect(s.status).toBe(200);
      s.close();
    });

    it("checks the id before authorizing (400) and authorizes before revealing whether a run exists (403, not 404)", async () => {
      await request(t.url).get("/api/runs/bad%20id/stream").expect(400);
      const res = await request(t.url).get("/api/runs/no-such-run/stream").expect(403);
      expect(res.body.error.code).toBe("forbidden");
      expect(asked).toEqual(["no-such-run"]);
    });

    it("answers 500 internal_error when authorize throws, and tells onError", async () => {
      const seen: string[] = [];
      const b = await serve(source, {
        authorize: () => {
          throw new Error("auth service down");
        },
        onError: (_e, context) => seen.push(context.phase),
      });
      try {
        const res = await request(b.url).get("/api/runs/open/stream").expect(500);
        expect(res.body.error.code).toBe("internal_error");
        expect(seen).toEqual(["authorize"]);
      } finally {
        await b.close();
      }
    });
  });

  describe("maxClients", () => {
    it("counts both streams and refuses the one too many with 503 too_many_clients and Retry-After", async () => {
      const t = await serve(source, { maxClients: 2, retryMs: 2500 });
      try {
        const a = await SseStream.open(`${t.url}/api/runs/open/stream`);
        const g = await SseStream.open(`${t.url}/api/stream`);
        await Promise.all([a.frameCount(1), g.frameCount(1)]);
        const res = await request(t.url).get("/api/runs/open/stream").expect(503);
        expect(res.body.error.code).toBe("too_many_clients");
        expect(res.headers["retry-after"]).toBe("3");
        // Unknown runs are refused the same way: a refused client learns nothing about which runs exist.
        await request(t.url).get("/api/runs/no-such-run/stream").expect(503);
        a.close();
        g.close();
      } finally {
        await t.close();
      }
    });
  });

  describe("?types=", () => {
    it("keeps only the listed event types; state and complete frames always pass", async () => {
      const t = await serve(source);
      try {
        const filtered = await SseStream.open(`${t.url}/api/runs/open/stream?types=unit.started,unit.failed`);
        const global = await SseStream.open(`${t.url}/api/stream?types=unit.failed`);
        const all = await SseStream.open(`${t.url}/api/runs/open/stream`);
        await Promise.all([filtered.frameCount(1), global.frameCount(2), all.frameCount(1)]);
        for (const type of ["unit.started", "unit.progress", "unit.failed", "unit.completed"]) {
          source.recordEvent("open", { type });
        }
        source.updateRun("open", { completed_units: 1 });
        source.completeRun("open", { status: "failed" });
        await Promise.all([filtered.end(), all.end(), global.frameCount(5)]);
        const summary = (s: SseStream) => s.frames.map((f) => (f.event === "event" ? String(f.json.type) : f.event));
        expect(summary(filtered)).toEqual(["state", "unit.started", "unit.failed", "state", "complete"]);
        expect(summary(global)).toEqual(["state", "state", "unit.failed", "state", "complete"]);
        expect(summary(all)).toHaveLength(7);
        global.close();
      } finally {
        await t.close();
      }
    });
  });
});
