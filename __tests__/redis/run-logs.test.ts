import type { Redis } from "ioredis";
import type { RedisRunSource } from "../../lib/redis";
import type { Envelope } from "../../lib/schema";
import type { LogGap, LogPage } from "../../lib/source";
import { describeRedis, eventually, readLog, sourcesPerTest, within } from "./support";

jest.setTimeout(30_000);

/** The envelopes of a page, failing the test on a gap or an unknown run. */
function pageOf(result: LogPage | LogGap | undefined): Envelope[] {
  if (result === undefined || "gap" in result) throw new Error(`expected a page, got ${JSON.stringify(result)}`);
  return result.envelopes;
}

/** Every key under `prefix` with its remaining time to live in ms (-1: none). */
async function keyspace(redis: Redis, prefix: string): Promise<Map<string, number>> {
  const keys = new Map<string, number>();
  let cursor = "0";
  do {
    const [next, found] = await redis.scan(cursor, "MATCH", `${prefix}:*`, "COUNT", 1000);
    cursor = next;
    for (const key of found) keys.set(key, await redis.pttl(key));
  } while (cursor !== "0");
  return keys;
}

describeRedis("RedisRunSource run logs", () => {
  const suite = sourcesPerTest("run-logs");
  const { source } = suite;

  /** A run with `events` events, every envelope it got in order. */
  const runWith = async (redis: RedisRunSource, runId: string, events: number): Promise<Envelope[]> => {
    await redis.createRun({ id: runId });
    const log = pageOf(await redis.readLog({ runId, limit: 1 }));
    for (let seq = 0; seq < events; seq++) log.push(await redis.recordEvent(runId, { type: "unit.progress", seq }));
    return log;
  };

  it("reads a run's log from its first state in pages, then after any of its ids, under the global feed's ids", async () => {
    const redis = source();
    await redis.createRun({ id: "a" });
    await redis.createRun({ id: "b" });
    const written: Envelope[] = [];
    for (let seq = 0; seq < 6; seq++) {
      written.push(await redis.recordEvent("a", { type: "unit.progress", seq }));
      await redis.recordEvent("b", { type: "unit.progress", seq });
    }
    const updated = await redis.updateRun("a", { status: "running", completed_units: 1 });
    const complete = await redis.completeRun("a", { status: "completed" });

    const first = pageOf(await redis.readLog({ runId: "a", limit: 3 }));
    expect(first.map((e) => e.type)).toEqual(["state", "event", "event"]);
    expect(first[0]).toMatchObject({ runId: "a", data: { id: "a", status: "pending" } });
    expect(first.slice(1)).toEqual(written.slice(0, 2));
    const rest: Envelope[] = [];
    let after = first.at(-1)?.id as string;
    for (;;) {
      const page = pageOf(await redis.readLog({ runId: "a", after, limit: 3 }));
      rest.push(...page);
      if (page.length < 3) break;
      after = page.at(-1)?.id as string;
    }
    expect(rest).toEqual([
      ...written.slice(2),
      { type: "state", runId: "a", id: rest.at(-2)?.id, data: updated },
      complete,
    ]);
    // After the complete: an empty page (the run is seen to its end).
    expect(await redis.readLog({ runId: "a", after: complete.id, limit: 3 })).toEqual({ envelopes: [] });

    // Every entry of the run's log is the global feed's entry of the same id.
    const feed = new Map((await readLog(suite.admin, redis.prefix)).map((entry) => [entry.id, entry]));
    for (const envelope of [...first, ...rest]) {
      expect(feed.get(envelope.id as string)).toMatchObject({ type: envelope.type, runId: "a", data: envelope.data });
    }
  });

  it("answers undefined for an unknown run and unknown_id for anything that is not an id of the run's log", async () => {
    const redis = source();
    const a = await runWith(redis, "a", 3);
    const b = await runWith(redis, "b", 3);
    const last = a.at(-1)?.id as string;
    const [ms, seq] = last.split("-") as [string, string];
    expect(await redis.readLog({ runId: "missing", limit: 5 })).toBeUndefined();
    expect(await redis.readLog({ runId: "missing", after: last, limit: 5 })).toBeUndefined();
    expect(await redis.readLog({ runId: "bad id", limit: 5 })).toBeUndefined();
    for (const after of [
      b[1]?.id as string, // another run's, after this run's first envelope: its log was never trimmed
      `${ms}-${Number(seq) + 1}`,
      "99999999999999-0",
      "0-0",
      `0${last}`,
      ms,
      `${ms}-0${seq}`,
      "18446744073709551616-0",
      "abc",
      "",
    ]) {
      expect([after, await redis.readLog({ runId: "a", after, limit: 5 })]).toEqual([after, { gap: "unknown_id" }]);
    }
    await expect(redis.readLog({ runId: "a", limit: 0 })).rejects.toThrow(RangeError);
  });

  it("keeps maxRunLogSize envelopes per run: from the start and ids trimmed away are trimmed, ids before the run unknown", async () => {
    const redis = source({ maxRunLogSize: 5 });
    const before = await runWith(redis, "before", 1);
    const a = await runWith(redis, "a", 20);
    expect(await suite.admin.xlen(`${redis.prefix}:log:{a}`)).toBe(5);
    expect(await redis.readLog({ runId: "a", limit: 10 })).toEqual({ gap: "trimmed" });
    for (const gone of [a[0], a[1], a[15]]) {
      expect(await redis.readLog({ runId: "a", after: gone?.id, limit: 10 })).toEqual({ gap: "trimmed" });
    }
    expect(await redis.readLog({ runId: "a", after: before[0]?.id, limit: 10 })).toEqual({ gap: "unknown_id" });
    expect(pageOf(await redis.readLog({ runId: "a", after: a[16]?.id, limit: 10 }))).toEqual(a.slice(17));
  });

  it("a quiet run keeps its whole log while busy runs record ten times historySize", async () => {
    const redis = source({ historySize: 50, maxRunLogSize: 100 });
    const quiet = await runWith(redis, "quiet", 4);
    const busy: Promise<unknown>[] = [];
    for (let seq = 0; seq < 250; seq++) {
      for (const runId of ["busy-1", "busy-2"]) {
        if (seq === 0) await redis.createRun({ id: runId });
        busy.push(redis.recordEvent(runId, { type: "unit.progress", seq }));
      }
    }
    await Promise.all(busy);
    expect(await suite.admin.xlen(`${redis.prefix}:log`)).toBeLessThan(500);
    expect(pageOf(await redis.readLog({ runId: "quiet", limit: 1000 }))).toEqual(quiet);
    // The feed no longer reaches back to the quiet run's envelopes: a global resume from there is trimmed.
    expect(await redis.readLog({ after: quiet[1]?.id, limit: 10 })).toEqual({ gap: "trimmed" });
    expect(await redis.readLog({ runId: "busy-1", limit: 10 })).toEqual({ gap: "trimmed" });
  });

  it("reads the global feed after an id; trimmed only between its first entry ever and its oldest kept", async () => {
    const redis = source({ historySize: 10 });
    expect(await redis.readLog({ after: "1-0", limit: 10 })).toEqual({ gap: "unknown_id" });
    const a = await runWith(redis, "a", 200);
    const feed = await readLog(suite.admin, redis.prefix);
    const oldest = feed[0]?.id as string;
    const index = a.findIndex((e) => e.id === oldest);
    expect(pageOf(await redis.readLog({ after: oldest, limit: 3 }))).toEqual(a.slice(index + 1, index + 4));
    expect(await redis.readLog({ after: a[0]?.id, limit: 3 })).toEqual({ gap: "trimmed" });
    expect(await redis.readLog({ after: a[5]?.id, limit: 3 })).toEqual({ gap: "trimmed" });
    const [ms] = String(a[0]?.id).split("-") as [string];
    for (const after of [`${Number(ms) - 1}-0`, "0-1", `${ms}9-0`, `0${oldest}`, "x"]) {
      expect([after, await redis.readLog({ after, limit: 3 })]).toEqual([after, { gap: "unknown_id" }]);
    }
    expect(pageOf(await redis.readLog({ after: a.at(-1)?.id, limit: 3 }))).toEqual([]);
  });

  it("gives one run's snapshot with its log's newest id as cursor, read atomically with its state", async () => {
    const redis = source();
    const created = await redis.createRun({ id: "a" });
    await redis.createRun({ id: "b" });
    const [state] = pageOf(await redis.readLog({ runId: "a", limit: 1 }));
    await redis.recordEvent("b", { type: "unit.other" });
    expect(await redis.snapshot("a")).toEqual({ states: [created], cursor: state?.id });

    // Updates of a racing b's events and snapshots of a: each cursor is an entry of a's log
    // holding exactly the state the snapshot returned.
    const writes: Promise<unknown>[] = [];
    const snapshots: Promise<unknown>[] = [];
    for (let i = 1; i <= 200; i++) {
      writes.push(redis.updateRun("a", { completed_units: i }));
      writes.push(redis.recordEvent("b", { type: "unit.other", i }));
      if (i % 5 === 0) snapshots.push(redis.snapshot("a"));
    }
    await Promise.all(writes);
    const log = pageOf(await redis.readLog({ runId: "a", limit: 1000 }));
    const unitsAt = new Map(log.map((e) => [e.id, (e.data as { completed_units: number }).completed_units]));
    for (const taken of (await Promise.all(snapshots)) as { states: { completed_units: number }[]; cursor: string }[]) {
      expect(unitsAt.get(taken.cursor)).toBe(taken.states[0]?.completed_units);
    }
  });

  it("a per-run read runs only on that run's keys and reads at most a page plus two entries, however big other runs are", async () => {
    const redis = source();
    const quiet = await runWith(redis, "quiet", 10);
    await redis.createRun({ id: "busy" });
    const writes: Promise<unknown>[] = [];
    for (let seq = 0; seq < 3000; seq++) writes.push(redis.recordEvent("busy", { type: "unit.progress", seq }));
    await Promise.all(writes);

    // MONITOR shows the commands scripts run too ("lua"); other suites share this Redis, so
    // only commands naming this source's keys count.
    const monitor = await suite.admin.monitor();
    const commands: string[][] = [];
    monitor.on("monitor", (_time: string, args: string[], source: string) => {
      const ours = args.some((arg) => arg.includes(redis.prefix));
      if (ours && (source === "lua" || args[0]?.toUpperCase().startsWith("EVAL"))) commands.push(args);
    });
    try {
      const page = pageOf(await redis.readLog({ runId: "quiet", after: quiet[2]?.id, limit: 4 }));
      expect(page).toEqual(quiet.slice(3, 7));
      expect(pageOf(await redis.readLog({ runId: "quiet", limit: 4 }))).toEqual(quiet.slice(0, 4));
      expect(await redis.readLog({ runId: "quiet", after: "1-1", limit: 4 })).toEqual({ gap: "unknown_id" });
      expect(await redis.replay(quiet[7]?.id as string, "quiet")).toEqual(quiet.slice(8));
      await eventually(
        async () => commands.filter((c) => c[0]?.toUpperCase().startsWith("EVAL")).length >= 4,
        "the monitor to show the four scripts",
        5_000,
      );
    } finally {
      await monitor.disconnect();
    }
    const inScripts = commands.filter((c) => !c[0]?.toUpperCase().startsWith("EVAL"));
    expect(inScripts.length).toBeGreaterThan(0);
    const runKeys = [`${redis.prefix}:run:{quiet}`, `${redis.prefix}:log:{quiet}`];
    let entriesRead = 0;
    for (const [name, key, from, to, , count] of inScripts) {
      expect(runKeys).toContain(key);
      if (name?.toUpperCase() === "XRANGE") {
        // Either a probe of one id (at most one entry) or a range with COUNT of at most a page.
        entriesRead += from === to ? 1 : Number(count);
        expect(from === to || Number(count) <= 1000).toBe(true);
      }
    }
    // Three reads of at most 4 (+ probes) and one replay page of at most 1000 that holds 2:
    // nowhere near the 3,000 envelopes of the busy run.
    expect(entriesRead).toBeLessThanOrEqual(3 * (4 + 2) + 1000 + 2);
    expect(inScripts.some(([name, key]) => name?.toUpperCase() === "XRANGE" && key === `${redis.prefix}:log`)).toBe(
      false,
    );
  });

  it("leaves only the documented keys, with their TTLs, after a run of runs; finished runs expire whole", async () => {
    const redis = source({
      maxRunLogSize: 10,
      historySize: 50,
      maxFinishedRuns: 3,
      finishedRunTtlMs: 5_000,
      resendWindowMs: 4_000,
    });
    const p = redis.prefix;
    for (let r = 0; r < 8; r++) {
      await runWith(redis, `done-${r}`, 15);
      await redis.completeRun(`done-${r}`, { status: r % 2 === 0 ? "completed" : "failed" });
    }
    await runWith(redis, "active-1", 15);
    await runWith(redis, "active-2", 2);

    const keys = await keyspace(suite.admin, p);
    const writeKeys = [...keys.keys()].filter((key) => key.startsWith(`${p}:write:{`));
    expect(writeKeys.length).toBe(8 * 17 + 16 + 3);
    for (const key of writeKeys) {
      expect(key).toMatch(
        new RegExp(`^${p.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}:write:\\{[\\w-]+\\}:[0-9a-f-]{36}$`),
      );
      expect(keys.get(key)).toBeGreaterThan(0);
      expect(keys.get(key)).toBeLessThanOrEqual(4_000);
    }
    const rest = new Map([...keys].filter(([key]) => !key.startsWith(`${p}:write:{`)));
    const finishedKeys = [5, 6, 7].flatMap((r) => [`${p}:run:{done-${r}}`, `${p}:log:{done-${r}}`]);
    const activeKeys = ["active-1", "active-2"].flatMap((id) => [`${p}:run:{${id}}`, `${p}:log:{${id}}`]);
    const globalKeys = [`${p}:log`, `${p}:origin`, `${p}:order`, `${p}:active`, `${p}:finished`];
    expect([...rest.keys()].sort()).toEqual([...finishedKeys, ...activeKeys, ...globalKeys].sort());
    for (const key of finishedKeys) {
      expect(rest.get(key)).toBeGreaterThan(0);
      expect(rest.get(key)).toBeLessThanOrEqual(5_000);
    }
    for (const key of [...activeKeys, ...globalKeys]) expect([key, rest.get(key)]).toEqual([key, -1]);
    for (const r of [5, 6, 7]) expect(await suite.admin.xlen(`${p}:log:{done-${r}}`)).toBe(10);
    expect(await suite.admin.xlen(`${p}:log:{active-1}`)).toBe(10);
    expect(await suite.admin.xlen(`${p}:log:{active-2}`)).toBe(3);
    expect(await suite.admin.zrange(`${p}:finished`, "0", "-1")).toEqual(["done-5", "done-6", "done-7"]);

    // The finished runs expire whole, and so do the write ids: only the active runs and the
    // global keys stay (the finished set lists the expired runs until the next completeRun).
    await eventually(
      async () => (await keyspace(suite.admin, p)).size === activeKeys.length + globalKeys.length,
      "finished runs and write ids to expire",
      20_000,
    );
    expect(await redis.getRun("done-7")).toBeUndefined();
    expect(await redis.readLog({ runId: "done-7", limit: 5 })).toBeUndefined();
    expect(await redis.getCompletion("done-7")).toBeUndefined();
    await redis.completeRun("active-2", { status: "completed" });
    expect(await suite.admin.zrange(`${p}:finished`, "0", "-1")).toEqual(["active-2"]);
    // A run id used again after its run expired is a new run with a log of its own.
    const again = await within(runWith(redis, "done-7", 1), "the new run", 5_000);
    expect(pageOf(await redis.readLog({ runId: "done-7", limit: 10 }))).toEqual(again);
  });
});
