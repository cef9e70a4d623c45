import { sseRouter } from "../../lib/index";
import type { RedisRunSource } from "../../lib/redis";
import type { Envelope } from "../../lib/schema";
import { describeRedis, eventually, sourcesPerTest } from "./support";

jest.setTimeout(30_000);

describeRedis("RedisRunSource reader lag", () => {
  const sources = sourcesPerTest("lag");
  let tests = 0;
  let writer: RedisRunSource;
  let reader: RedisRunSource;

  beforeEach(() => {
    // The writer and the reader of a test share its keys.
    const prefix = `${sources.prefix}:${tests++}`;
    writer = sources.source({ prefix });
    // One entry per read, so a burst keeps the reader behind for a while.
    reader = sources.source({ prefix, readCount: 1, blockMs: 200 });
  });

  it("is unknown before anyone subscribes, 0 once the reader found the end of the feed, and in the router's stats", async () => {
    expect(reader.lag()).toBeUndefined();
    const seen: Envelope[] = [];
    const router = sseRouter(reader, { onError: () => {} });
    reader.subscribe((e) => seen.push(e));
    // A snapshot waits until the live reader knows where it starts: writes after it are delivered.
    await reader.snapshot();
    await writer.createRun({ id: "a" });
    await eventually(async () => seen.length === 1, "the run's first state", 5_000);
    await eventually(async () => reader.lag()?.ms === 0, "the reader to catch up", 5_000);
    expect(router.stats().sourceLag).toMatchObject({ ms: 0 });
    await router.close();
  });

  it("while the reader works through a backlog one entry at a time, it says how old the last entry it delivered is", async () => {
    const seen: Envelope[] = [];
    reader.subscribe((e) => seen.push(e));
    await reader.snapshot();
    await writer.createRun({ id: "b" });
    await eventually(async () => seen.length === 1, "the run's first state", 5_000);
    await Promise.all([...Array(50)].map((_, n) => writer.recordEvent("b", { type: "unit.progress", n })));
    await eventually(async () => (reader.lag()?.ms ?? 0) > 0, "a lag while behind", 5_000);
    await eventually(async () => seen.length === 51 && reader.lag()?.ms === 0, "the reader to catch up", 10_000);
  });
});
