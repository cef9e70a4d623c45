import request from "supertest";
import { createStreamToken, MemoryRunSource, type RunEventSource } from "../../lib/index";
import type { RedisRunSource } from "../../lib/redis";
import { serve } from "../helpers/server";
import { type SseFrame, SseStream } from "../helpers/sse";
import { describeRedis, sourcesPerTest } from "./support";

const SECRET = "redis-scopes-secret-of-32-bytes-or-more";

interface Writer {
  createRun(init: { id: string; tags?: string[] }): unknown;
  recordEvent(runId: string, event: { type: string }): unknown;
  updateRun(runId: string, patch: Record<string, unknown>): unknown;
  completeRun(runId: string, final: { status: "completed" } & Record<string, unknown>): unknown;
  getRun(runId: string): unknown;
}

function runOf(frame: SseFrame): unknown {
  return frame.event === "event" ? frame.json.run_id : frame.json.id;
}

async function codeOf(work: () => unknown): Promise<string | undefined> {
  try {
    await work();
    return undefined;
  } catch (error) {
    return (error as { code?: string }).code;
  }
}

describeRedis("scopes on RedisRunSource", () => {
  const sources = sourcesPerTest("scopes");
  let redis: RedisRunSource;

  beforeEach(() => {
    redis = sources.source();
  });

  it("run tags are fixed at createRun: a change is tags_fixed and changes nothing, as in MemoryRunSource", async () => {
    const memory = new MemoryRunSource();
    for (const writer of [memory, redis] as Writer[]) {
      await writer.createRun({ id: "r1", tags: ["team:web", "user:1"] });
      expect(await codeOf(() => writer.createRun({ id: "r2", tags: ["bad tag"] }))).toBe("invalid_state");
      expect(await codeOf(() => writer.updateRun("r1", { tags: ["team:web"] }))).toBe("tags_fixed");
      expect(await codeOf(() => writer.updateRun("r1", { tags: undefined }))).toBe("tags_fixed");
      expect(await codeOf(() => writer.completeRun("r1", { status: "completed", tags: [] }))).toBe("tags_fixed");
      expect(await codeOf(() => writer.updateRun("ghost", { tags: ["a"] }))).toBe("run_not_found");
      expect(await writer.getRun("r1")).toMatchObject({ status: "pending", tags: ["team:web", "user:1"] });
      // The same tags again are no change.
      await writer.updateRun("r1", { tags: ["team:web", "user:1"], completed_units: 1 });
      await writer.completeRun("r1", { status: "completed", tags: ["team:web", "user:1"] });
      expect(await codeOf(() => writer.updateRun("r1", { tags: ["x"] }))).toBe("run_finished");
    }
    expect(await redis.getRun("r1")).toEqual(memory.getRun("r1"));
  });

  it("a scoped, filtered global stream over Redis: snapshot, live and resume hold only the runs in view", async () => {
    await redis.createRun({ id: "web1", tags: ["team:web"] });
    await redis.createRun({ id: "ops1", tags: ["team:ops"] });
    await redis.createRun({ id: "web2", tags: ["team:web"] });
    const t = await serve(redis as RunEventSource, { tokens: { secret: SECRET } });
    try {
      const token = await createStreamToken(SECRET, { tags: ["team:web"], expiresIn: "5m" });
      const url = `${t.url}/api/stream?token=${token}&runs=web2,ops1`;
      const first = await SseStream.open(url);
      await first.frameCount(1);
      await redis.recordEvent("ops1", { type: "unit.progress" });
      await redis.recordEvent("web2", { type: "unit.progress" });
      await first.frameCount(2);
      first.close();
      await redis.recordEvent("web1", { type: "unit.progress" });
      await redis.recordEvent("ops1", { type: "unit.progress" });
      await redis.updateRun("web2", { completed_units: 1 });
      const second = await SseStream.open(url, { "Last-Event-ID": first.frames.at(-1)?.id as string });
      await second.frameCount(1);
      await redis.recordEvent("web2", { type: "unit.done" });
      await second.frameCount(2);
      expect([...first.frames, ...second.frames].map((f) => [f.event, runOf(f)])).toEqual([
        ["state", "web2"],
        ["event", "web2"],
        ["state", "web2"],
        ["event", "web2"],
      ]);
      for (const s of [first, second]) expect(s.raw).not.toMatch(/web1|ops1/);
      second.close();
      await request(t.url).get(`/api/runs/ops1/stream?token=${token}`).expect(403);
    } finally {
      await t.close();
    }
  });
});
