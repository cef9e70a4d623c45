import { execFileSync } from "node:child_process";
import path from "node:path";
import { Redis } from "ioredis";
import { RuncastError } from "../../lib/errors";
import { type EventInput, MemoryRunSource, type RunCompletion, type RunInit, type RunPatch } from "../../lib/memory";
import { type RedisErrorContext, RedisRunSource, type RedisRunSourceOptions } from "../../lib/redis";
import type { Envelope } from "../../lib/schema";
import { loadedIoredisMajor } from "./fixtures/ioredis-major";
import {
  adminClient,
  Collector,
  connectionsNamed,
  describeRedis,
  eventually,
  expectedIoredisMajor,
  FaultyProxy,
  REDIS_URL,
  readLog,
  sourcesPerTest,
  within,
} from "./support";

jest.setTimeout(30_000);

/** The writer side both sources share (MemoryRunSource answers synchronously, RedisRunSource with promises). */
interface Writer {
  createRun(init: RunInit): unknown;
  recordEvent(runId: string, event: EventInput): unknown;
  updateRun(runId: string, patch: RunPatch): unknown;
  completeRun(runId: string, final: RunCompletion): unknown;
}

/** What a call ended with: its result, or its error's code and message. */
async function outcome(call: () => unknown): Promise<{ ok: unknown } | { code: string; message: string }> {
  try {
    return { ok: await call() };
  } catch (error) {
    if (error instanceof RuncastError) return { code: error.code, message: error.message };
    throw error;
  }
}

/** Envelope or state without what differs by nature between sources (ids, timestamps). */
function comparable(value: unknown): unknown {
  if (typeof value !== "object" || value === null || !("ok" in value)) return value;
  const ok = (value as { ok: unknown }).ok;
  if (typeof ok === "object" && ok !== null && "runId" in ok) {
    const { id: _id, ...rest } = ok as Envelope;
    return { ok: rest };
  }
  return value;
}

const TS = "2026-01-01T00:00:00.000Z";

/** An object that contains itself: JSON cannot write it. */
function cycle(): Record<string, unknown> {
  const value: Record<string, unknown> = { name: "loop" };
  value.self = { back: value };
  return value;
}

/** An object whose `toJSON` throws, as a half-built value object's might. */
const unwritable = {
  toJSON(): never {
    throw new Error("not ready");
  },
};

/** Each writer call to compare, against a store holding an active run `active` and a finished run `done`. */
const CALLS: [string, (w: Writer) => unknown][] = [
  ["createRun with a bad id", (w) => w.createRun({ id: "no spaces" })],
  ["createRun of an existing run", (w) => w.createRun({ id: "active" })],
  ["createRun of an existing run with a bad state", (w) => w.createRun({ id: "active", completed_units: -1 })],
  ["createRun with a terminal status", (w) => w.createRun({ id: "new", status: "completed" as "running" })],
  ["createRun with fractional units", (w) => w.createRun({ id: "new", completed_units: 1.5 })],
  ["createRun with extra fields", (w) => w.createRun({ id: "new", total_units: 4, owner: { name: "ci", tags: [] } })],
  ["recordEvent on an unknown run", (w) => w.recordEvent("missing", { type: "unit.started" })],
  ["recordEvent with an invalid run id", (w) => w.recordEvent("bad id!", { type: "unit.started" })],
  ["recordEvent on a finished run", (w) => w.recordEvent("done", { type: "unit.started" })],
  ["recordEvent with a bad type", (w) => w.recordEvent("active", { type: "Not Valid" })],
  ["recordEvent with a bad type on an unknown run", (w) => w.recordEvent("missing", { type: "Not Valid" })],
  ["recordEvent with a bad type on a finished run", (w) => w.recordEvent("done", { type: "Not Valid" })],
  ["recordEvent naming another run", (w) => w.recordEvent("active", { type: "unit.started", run_id: "other" })],
  ["recordEvent with a bad timestamp", (w) => w.recordEvent("active", { type: "unit.started", ts: "yesterday" })],
  ["recordEvent", (w) => w.recordEvent("active", { type: "unit.started", unit: "api", ts: TS, n: [1, {}] })],
  ["updateRun to a terminal status", (w) => w.updateRun("active", { status: "completed" as "running" })],
  ["updateRun changing the id", (w) => w.updateRun("active", { id: "other" })],
  ["updateRun with negative units", (w) => w.updateRun("active", { completed_units: -1 })],
  ["updateRun removing a required field", (w) => w.updateRun("active", { completed_units: undefined })],
  ["updateRun on a finished run", (w) => w.updateRun("done", { completed_units: 1 })],
  ["updateRun on an unknown run, badly", (w) => w.updateRun("missing", { status: "failed" as "running" })],
  ["updateRun", (w) => w.updateRun("active", { status: "running", completed_units: 2, note: "half way" })],
  ["updateRun removing an optional field", (w) => w.updateRun("active", { total_units: undefined })],
  ["completeRun without a terminal status", (w) => w.completeRun("active", { status: "running" as "failed" })],
  ["completeRun with a bad state", (w) => w.completeRun("active", { status: "completed", total_units: -3 })],
  ["completeRun on a finished run", (w) => w.completeRun("done", { status: "completed" })],
  ["completeRun on an unknown run", (w) => w.completeRun("missing", { status: "failed" })],
  ["completeRun", (w) => w.completeRun("active", { status: "failed", completed_units: 3, reason: "timeout" })],
  // Values JSON cannot carry: refused with the same code and message, nothing changed.
  ["createRun with a BigInt", (w) => w.createRun({ id: "new", budget: 10n })],
  ["createRun with a cycle", (w) => w.createRun({ id: "new", owner: cycle() })],
  ["createRun of an existing run with a BigInt", (w) => w.createRun({ id: "active", budget: 10n })],
  ["recordEvent with a BigInt", (w) => w.recordEvent("active", { type: "unit.started", bytes: [1, 2n] })],
  ["recordEvent with a toJSON that throws", (w) => w.recordEvent("active", { type: "unit.started", at: unwritable })],
  ["recordEvent with a symbol", (w) => w.recordEvent("active", { type: "unit.started", tag: Symbol("x") })],
  ["recordEvent with a BigInt on a finished run", (w) => w.recordEvent("done", { type: "unit.started", n: 1n })],
  ["updateRun with a nested BigInt", (w) => w.updateRun("active", { meta: { n: 5n } })],
  ["updateRun with a cycle", (w) => w.updateRun("active", { meta: cycle() })],
  ["updateRun with a function", (w) => w.updateRun("active", { callback: () => 1 })],
  ["updateRun with NaN", (w) => w.updateRun("active", { ratio: Number.NaN })],
  ["updateRun with Infinity", (w) => w.updateRun("active", { eta: [Number.POSITIVE_INFINITY] })],
  ["updateRun with a Map", (w) => w.updateRun("active", { units: new Map([["a", 1]]) })],
  ["updateRun with a BigInt on an unknown run", (w) => w.updateRun("missing", { n: 1n })],
  ["updateRun with a Date", (w) => w.updateRun("active", { started_at: new Date(TS), nested: { at: new Date(TS) } })],
  ["completeRun with a BigInt", (w) => w.completeRun("active", { status: "completed", cost: 1n })],
  ["completeRun with a toJSON that throws", (w) => w.completeRun("active", { status: "failed", at: unwritable })],
];

// Needs no Redis: the subpath split is about module loading.
describe("the runcast/redis entry", () => {
  const root = path.join(__dirname, "..", "..");
  const loaded = (entry: string): boolean => {
    const script = `require(${JSON.stringify(entry)}); process.stdout.write(String(Object.keys(require.cache).some((file) => file.includes("${path.sep}node_modules${path.sep}ioredis${path.sep}"))));`;
    const out = execFileSync(process.execPath, ["-r", "ts-node/register/transpile-only", "-e", script], {
      cwd: root,
      env: {
        ...process.env,
        TS_NODE_COMPILER_OPTIONS: JSON.stringify({ module: "commonjs", moduleResolution: "node" }),
      },
    });
    return out.toString() === "true";
  };

  it("runs on the ioredis major its jest project maps `ioredis` to", () => {
    // jest.config.ts runs the Redis suites on ioredis 6 and again on ioredis 5.
    expect(loadedIoredisMajor()).toBe(expectedIoredisMajor());
  });

  it("importing runcast never loads ioredis; runcast/redis does", () => {
    expect(loaded("./lib/index.ts")).toBe(false);
    expect(loaded("./lib/redis/index.ts")).toBe(true);
  });

  it("rejects bad options with invalid_option before connecting", () => {
    const bad: RedisRunSourceOptions[] = [
      { prefix: "has space" },
      { prefix: "" },
      { prefix: "with{brace" },
      { prefix: "with}brace" },
      { maxRunLogSize: 0 },
      { finishedRunTtlMs: 2.5 },
      { unresponsiveMs: -1 },
      { historySize: 0 },
      { maxFinishedRuns: 1.5 },
      { resendWindowMs: -1 },
      { readCount: Number.NaN },
      { blockMs: 0 },
      { url: REDIS_URL, redis: {} as Redis },
    ];
    for (const options of bad) {
      expect(() => new RedisRunSource(options)).toThrow(expect.objectContaining({ code: "invalid_option" }));
    }
  });
});

describeRedis("RedisRunSource", () => {
  const suite = sourcesPerTest("contract");
  const { prefix, source } = suite;

  it.each(CALLS)("%s: the same outcome as MemoryRunSource", async (_name, call) => {
    const memory = new MemoryRunSource();
    const redis = source();
    for (const writer of [memory, redis] as Writer[]) {
      await writer.createRun({ id: "active", total_units: 3, owner: { name: "ci" } });
      await writer.createRun({ id: "done" });
      await writer.completeRun("done", { status: "cancelled" });
    }
    const expected = comparable(await outcome(() => call(memory)));
    expect(comparable(await outcome(() => call(redis)))).toEqual(expected);
    // Whatever happened, both now hold the same states.
    for (const runId of ["active", "done", "new"]) expect(await redis.getRun(runId)).toEqual(memory.getRun(runId));
  });

  it("refuses values JSON cannot carry with invalid_state or invalid_event, and announces and changes nothing", async () => {
    const refused: [(w: Writer) => unknown, string][] = [
      [(w) => w.createRun({ id: "other", budget: 10n }), "invalid_state"],
      [(w) => w.recordEvent("active", { type: "unit.started", n: 5n }), "invalid_event"],
      [(w) => w.recordEvent("active", { type: "unit.started", at: unwritable }), "invalid_event"],
      [(w) => w.updateRun("active", { meta: { n: 5n } }), "invalid_state"],
      [(w) => w.updateRun("active", { meta: cycle() }), "invalid_state"],
      [(w) => w.updateRun("active", { ratio: Number.NaN }), "invalid_state"],
      [(w) => w.completeRun("active", { status: "completed", at: unwritable }), "invalid_state"],
    ];
    for (const writer of [new MemoryRunSource(), source()]) {
      await writer.createRun({ id: "active", total_units: 2 });
      const before = await writer.getRun("active");
      const seen = new Collector<Envelope>();
      const unsubscribe = writer.subscribe(seen.listener);
      for (const [call, code] of refused) {
        const result = await outcome(() => call(writer as Writer));
        expect(result).toMatchObject({ code, message: expect.stringContaining("JSON") });
      }
      expect(await writer.getRun("active")).toEqual(before);
      expect(await writer.getRun("other")).toBeUndefined();
      // The next valid write is the first envelope announced since.
      await writer.recordEvent("active", { type: "unit.finished" });
      await seen.until(1);
      expect(seen.items.map((e) => e.type)).toEqual(["event"]);
      unsubscribe();
    }
  });

  it("announces a run's life in order: state, events, state, one complete; a state is never terminal", async () => {
    const redis = source();
    const collected = new Collector<Envelope>();
    const seen = collected.items;
    const unsubscribe = redis.subscribe(collected.listener);
    const created = await redis.createRun({ id: "job", total_units: 2 });
    const first = await redis.recordEvent("job", { type: "unit.started", unit: "a" });
    const second = await redis.recordEvent("job", { type: "unit.finished", unit: "a" });
    const updated = await redis.updateRun("job", { status: "running", completed_units: 1 });
    const complete = await redis.completeRun("job", { status: "completed", completed_units: 2 });
    await collected.until(5);
    unsubscribe();

    expect(seen.map((e) => e.type)).toEqual(["state", "event", "event", "state", "complete"]);
    expect(seen[0]?.data).toEqual(created);
    expect(seen.slice(1, 3)).toEqual([first, second]);
    expect(seen[3]?.data).toEqual(updated);
    expect(seen[4]).toEqual(complete);
    const ids = seen.map((e) => e.id as string);
    expect([...ids].sort(redis.compareIds)).toEqual(ids);
    expect(new Set(ids).size).toBe(5);

    expect(await redis.getRun("job")).toEqual(complete.data);
    expect(await redis.getCompletion("job")).toEqual(complete);
    expect(await redis.listRuns()).toEqual([]);
  });

  it("keeps extra state fields exactly as given, nested values and numbers included", async () => {
    const redis = source();
    const extra = {
      nested: { list: [], map: {}, deep: [[1.5, null, "é\n\u2028"]] },
      ratio: 0.1 + 0.2,
      big: 2 ** 53 - 1,
    };
    await redis.createRun({ id: "job", ...extra });
    await redis.updateRun("job", { completed_units: 1, ratio: 1 / 3 });
    expect(await redis.getRun("job")).toEqual({
      id: "job",
      status: "pending",
      completed_units: 1,
      ...extra,
      ratio: 1 / 3,
    });
  });

  it("lists active runs in creation order and forgets the oldest finished runs beyond maxFinishedRuns", async () => {
    const redis = source({ maxFinishedRuns: 2 });
    for (const id of ["r1", "r2", "r3", "r4"]) await redis.createRun({ id });
    expect((await redis.listRuns()).map((s) => s.id)).toEqual(["r1", "r2", "r3", "r4"]);
    for (const id of ["r2", "r1", "r3"]) await redis.completeRun(id, { status: "completed" });
    expect((await redis.listRuns()).map((s) => s.id)).toEqual(["r4"]);
    expect(await redis.getRun("r2")).toBeUndefined();
    expect(await redis.getCompletion("r2")).toBeUndefined();
    expect((await redis.getRun("r1"))?.status).toBe("completed");
    expect((await redis.getCompletion("r3"))?.type).toBe("complete");
    expect(await suite.admin.exists(`${redis.prefix}:run:{r2}`, `${redis.prefix}:log:{r2}`)).toBe(0);
    expect(await suite.admin.exists(`${redis.prefix}:run:{r1}`, `${redis.prefix}:log:{r1}`)).toBe(2);
  });

  it("gives a snapshot whose cursor is the newest envelope it reflects, read atomically with the states", async () => {
    const redis = source();
    expect(await redis.snapshot()).toEqual({ states: [], cursor: undefined });
    const created = await redis.createRun({ id: "job" });
    const snap = await redis.snapshot("job");
    expect(snap).toEqual({ states: [created], cursor: (await readLog(suite.admin, redis.prefix))[0]?.id });
    expect(await redis.snapshot("unknown")).toBeUndefined();
    expect(await redis.snapshot("bad id")).toBeUndefined();

    // Updates racing snapshots: each snapshot's state must be exactly the one its cursor names.
    const updates: Promise<unknown>[] = [];
    const snapshots: Promise<unknown>[] = [];
    for (let i = 1; i <= 200; i++) {
      updates.push(redis.updateRun("job", { completed_units: i }));
      if (i % 5 === 0) snapshots.push(redis.snapshot("job"));
    }
    await Promise.all(updates);
    const log = await readLog(suite.admin, redis.prefix);
    const unitsAt = new Map(log.map((entry) => [entry.id, entry.data.completed_units]));
    for (const taken of (await Promise.all(snapshots)) as { states: { completed_units: number }[]; cursor: string }[]) {
      expect(unitsAt.get(taken.cursor)).toBe(taken.states[0]?.completed_units);
    }
  });

  it("replays exactly the envelopes after an id, of one run (an id of its log) or of all, and null for an id it does not hold", async () => {
    const redis = source();
    await redis.createRun({ id: "a" });
    await redis.createRun({ id: "b" });
    const written: Envelope[] = [];
    for (let i = 0; i < 10; i++) {
      written.push(await redis.recordEvent("a", { type: "unit.progress", seq: i }));
      written.push(await redis.recordEvent("b", { type: "unit.progress", seq: i }));
    }
    const after = written[5]?.id as string;
    expect(await redis.replay(after)).toEqual(written.slice(6));
    expect(await redis.replay(after, "b")).toEqual(written.slice(6).filter((e) => e.runId === "b"));
    const ofA = written[4]?.id as string;
    expect(await redis.replay(ofA, "a")).toEqual(written.slice(5).filter((e) => e.runId === "a"));
    // An id of another run's log is not a position in this run's log.
    expect(await redis.replay(after, "a")).toBeNull();
    expect(await redis.replay(written[19]?.id as string)).toEqual([]);
    expect(await redis.replay(written[19]?.id as string, "b")).toEqual([]);

    const [ms, seq] = after.split("-") as [string, string];
    for (const foreign of [`${ms}-${Number(seq) + 1000}`, "0-0", "1-1", "99999999999999-0", "garbage", "5", "1-2-3"]) {
      expect(await redis.replay(foreign)).toBeNull();
      expect(await redis.replay(foreign, "a")).toBeNull();
    }
    // Redis would read these as ids of the feed: only the canonical spelling is one.
    expect(await redis.replay(`0${after}`)).toBeNull();
    expect(await redis.replay(ms)).toBeNull();
    expect(await redis.replay("18446744073709551616-0")).toBeNull();
  });

  it("answers null once the stream was trimmed past the id, while recent ids still replay", async () => {
    const redis = source({ historySize: 20 });
    await redis.createRun({ id: "job" });
    const written: Envelope[] = [];
    for (let i = 0; i < 600; i++) written.push(await redis.recordEvent("job", { type: "unit.progress", seq: i }));
    const length = await suite.admin.xlen(`${redis.prefix}:log`);
    expect(length).toBeLessThan(600);
    expect(await redis.replay(written[0]?.id as string)).toBeNull();
    expect(await redis.replay(written[589]?.id as string)).toEqual(written.slice(590));
  });

  it("delivers what is written right after subscribe, and nothing written before", async () => {
    const redis = source();
    await redis.createRun({ id: "job" });
    await redis.recordEvent("job", { type: "unit.before" });
    const seen = new Collector<Envelope>();
    const unsubscribe = redis.subscribe(seen.listener);
    // Written before the reader's first XREAD can reach Redis: a reader starting at `$` misses it.
    const written = await redis.recordEvent("job", { type: "unit.after" });
    await seen.until(1);
    unsubscribe();
    expect(seen.items).toEqual([written]);
  });

  it("shares one reader between subscribers, keeps delivering when one throws, and stops on unsubscribe", async () => {
    const errors: RedisErrorContext[] = [];
    const redis = source({ onError: (_error, context) => errors.push(context) });
    const first: Envelope[] = [];
    const second = new Collector<Envelope>();
    const stopFirst = redis.subscribe((envelope) => {
      first.push(envelope);
      throw new Error("listener bug");
    });
    const stopSecond = redis.subscribe(second.listener);
    await redis.createRun({ id: "job" });
    await second.until(1);
    expect(first).toEqual(second.items);
    expect(errors).toEqual([{ phase: "listener" }]);
    expect(await connectionsNamed(suite.admin, `${redis.prefix}:reader`)).toHaveLength(1);
    stopFirst();
    stopSecond();
    // A later subscriber gets the next envelope; the two that left do not.
    const third = new Collector<Envelope>();
    const stopThird = redis.subscribe(third.listener);
    const later = await redis.recordEvent("job", { type: "unit.later" });
    await third.until(1);
    stopThird();
    expect(third.items).toEqual([later]);
    expect(second.items).toHaveLength(1);
    expect(first).toHaveLength(1);
  });

  it("records a command re-sent after its reply was lost only once", async () => {
    const proxy = await FaultyProxy.start(REDIS_URL);
    const errors: string[] = [];
    const redis = source({ url: proxy.urlFor(REDIS_URL), onError: (error) => errors.push(error.message) });
    try {
      await redis.createRun({ id: "job" });
      proxy.loseNextReply();
      const envelope = await within(redis.recordEvent("job", { type: "unit.once" }), "the re-sent write", 15_000);

      // Redis ran the write twice: the reply the proxy lost proves the first run, the one the
      // caller got proves the resend ...
      expect(proxy.lostReplies).toBe(1);
      expect(proxy.connections).toBe(2);
      expect(proxy.sent.split("unit.once").length - 1).toBe(2);
      // ... yet the event is recorded once, under the id the caller got.
      const events = (await readLog(suite.admin, redis.prefix)).filter((entry) => entry.type === "event");
      expect(events.map((entry) => entry.id)).toEqual([envelope.id]);
      const inRunLog = (await readLog(suite.admin, redis.prefix, "job")).filter((entry) => entry.type === "event");
      expect(inRunLog.map((entry) => entry.id)).toEqual([envelope.id]);
      expect(errors.some((message) => message.includes("lost the commands connection"))).toBe(true);
    } finally {
      await redis.close();
      await proxy.close();
    }
  });

  it("keeps its keys under the keyPrefix of a client given as redis", async () => {
    const client = new Redis(REDIS_URL, { keyPrefix: `${prefix}:app:`, protocol: 2 });
    try {
      const redis = source({ redis: client, prefix: "jobs" });
      const seen = new Collector<Envelope>();
      const unsubscribe = redis.subscribe(seen.listener);
      const created = await redis.createRun({ id: "job" });
      const event = await redis.recordEvent("job", { type: "unit.started" });
      await seen.until(2);
      unsubscribe();
      expect(await redis.snapshot()).toEqual({ states: [created], cursor: event.id });
      expect(await redis.replay(seen.items[0]?.id as string, "job")).toEqual([event]);
      expect(
        await suite.admin.exists(
          `${prefix}:app:jobs:run:{job}`,
          `${prefix}:app:jobs:log:{job}`,
          `${prefix}:app:jobs:log`,
        ),
      ).toBe(3);
    } finally {
      await client.quit();
    }
  });

  it("reports when the stream was trimmed past its reader during an outage, then reads on", async () => {
    const proxy = await FaultyProxy.start(REDIS_URL);
    const errors = new Collector<[string, RedisErrorContext]>();
    const behind = source({
      url: proxy.urlFor(REDIS_URL),
      historySize: 20,
      onError: (error, context) => errors.listener([error.message, context]),
    });
    const writer = source({ prefix: behind.prefix, historySize: 20 });
    try {
      const seen = new Collector<Envelope>();
      const unsubscribe = behind.subscribe(seen.listener);
      await behind.snapshot(); // resolves once the reader knows where it starts
      await writer.createRun({ id: "job" });
      await seen.until(1);

      proxy.cut();
      for (let i = 0; i < 300; i++) await writer.recordEvent("job", { type: "unit.progress", seq: i });
      proxy.restore();
      await errors.until((items) => items.some(([, context]) => context.phase === "read"), 20_000);
      const last = await writer.recordEvent("job", { type: "unit.last" });
      await seen.until((items) => items.at(-1)?.id === last.id, 20_000);
      unsubscribe();

      const [message] = errors.items.find(([, context]) => context.phase === "read") ?? [""];
      expect(message).toMatch(/trimmed past \d+-\d+, so envelopes recorded meanwhile may not have been delivered/);
      const ids = seen.items.map((envelope) => envelope.id as string);
      expect([...ids].sort(behind.compareIds)).toEqual(ids);
      expect(new Set(ids).size).toBe(ids.length);
    } finally {
      await behind.close();
      await proxy.close();
    }
  });

  it("close() releases its connections, rejects later writes, and leaves the caller's client open", async () => {
    const client = adminClient();
    try {
      const redis = source({ redis: client });
      const unsubscribe = redis.subscribe(() => {});
      await redis.createRun({ id: "job" });
      await redis.snapshot();
      expect(await connectionsNamed(suite.admin, `${redis.prefix}:commands`)).toHaveLength(1);
      expect(await connectionsNamed(suite.admin, `${redis.prefix}:reader`)).toHaveLength(1);
      unsubscribe();
      await redis.close();
      await eventually(
        async () =>
          (await connectionsNamed(suite.admin, `${redis.prefix}:commands`)).length +
            (await connectionsNamed(suite.admin, `${redis.prefix}:reader`)).length ===
          0,
        "the connections to go",
        5_000,
      );
      await expect(redis.recordEvent("job", { type: "unit.late" })).rejects.toMatchObject({ code: "unavailable" });
      expect(() => redis.subscribe(() => {})).toThrow(expect.objectContaining({ code: "unavailable" }));
      expect(await client.ping()).toBe("PONG");
    } finally {
      await client.quit();
    }
  });
});
