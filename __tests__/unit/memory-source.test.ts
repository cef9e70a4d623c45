import { compareEnvelopeIds, type Envelope, MemoryRunSource, RuncastError } from "../../lib/index";

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (error) {
    return error instanceof RuncastError ? error.code : `not a RuncastError: ${String(error)}`;
  }
  return undefined;
}

describe("MemoryRunSource", () => {
  let source: MemoryRunSource;
  let seen: Envelope[];

  beforeEach(() => {
    source = new MemoryRunSource({ historySize: 5 });
    seen = [];
    source.subscribe((e) => seen.push(e));
  });

  it("announces a new run as a state envelope and assigns ordered ids", () => {
    const state = source.createRun({ id: "r1", total_units: 2, owner: "ci" });
    expect(state).toEqual({ id: "r1", status: "pending", completed_units: 0, total_units: 2, owner: "ci" });
    source.recordEvent("r1", { type: "unit.started", unit: "db" });
    source.updateRun("r1", { status: "running", completed_units: 1 });
    source.completeRun("r1", { status: "completed", completed_units: 2 });
    expect(seen.map((e) => e.type)).toEqual(["state", "event", "state", "complete"]);
    const ids = seen.map((e) => e.id as string);
    for (let i = 1; i < ids.length; i++)
      expect(compareEnvelopeIds(ids[i - 1] as string, ids[i] as string)).toBeLessThan(0);
    expect(source.lastId).toBe(ids[3]);
    expect(source.getCompletion("r1")).toEqual(seen[3]);
  });

  it("fills in run_id and ts, and keeps extra fields", () => {
    source.createRun({ id: "r" });
    const e = source.recordEvent("r", { type: "unit.failed", unit: "api", reason: "timeout" });
    expect(e.data).toEqual({
      type: "unit.failed",
      unit: "api",
      reason: "timeout",
      run_id: "r",
      ts: expect.any(String),
    });
    expect(Number.isNaN(Date.parse((e.data as { ts: string }).ts))).toBe(false);
  });

  it.each<[string, (s: MemoryRunSource) => unknown, string]>([
    ["an invalid run id", (s) => s.createRun({ id: "has space" }), "invalid_run_id"],
    ["a duplicate run", (s) => s.createRun({ id: "r" }), "run_exists"],
    ["a terminal initial status", (s) => s.createRun({ id: "x", status: "completed" as "pending" }), "invalid_state"],
    ["an event of an unknown run", (s) => s.recordEvent("ghost", { type: "unit.started" }), "run_not_found"],
    ["an event with a bad type", (s) => s.recordEvent("r", { type: "Unit Started" }), "invalid_event"],
    [
      "an event naming another run",
      (s) => s.recordEvent("r", { type: "unit.started", run_id: "other" }),
      "invalid_event",
    ],
    ["an event with a bad ts", (s) => s.recordEvent("r", { type: "unit.started", ts: "yesterday" }), "invalid_event"],
    [
      "a terminal status through updateRun",
      (s) => s.updateRun("r", { status: "failed" as "running" }),
      "invalid_state",
    ],
    ["a negative completed_units", (s) => s.updateRun("r", { completed_units: -1 }), "invalid_state"],
    ["changing the id", (s) => s.updateRun("r", { id: "other" }), "invalid_state"],
    [
      "completing with a non-terminal status",
      (s) => s.completeRun("r", { status: "running" as "completed" }),
      "invalid_state",
    ],
  ])("throws on %s and changes nothing", (_what, call, code) => {
    source.createRun({ id: "r" });
    const before = { state: source.getRun("r"), lastId: source.lastId, seen: seen.length };
    expect(codeOf(() => call(source))).toBe(code);
    expect({ state: source.getRun("r"), lastId: source.lastId, seen: seen.length }).toEqual(before);
  });

  it("refuses writes to a finished run", () => {
    source.createRun({ id: "r" });
    source.completeRun("r", { status: "cancelled" });
    expect(codeOf(() => source.recordEvent("r", { type: "unit.started" }))).toBe("run_finished");
    expect(codeOf(() => source.updateRun("r", { completed_units: 1 }))).toBe("run_finished");
    expect(codeOf(() => source.completeRun("r", { status: "failed" }))).toBe("run_finished");
  });

  it("lists only active runs, and takes snapshots with their cursor", () => {
    source.createRun({ id: "a" });
    source.createRun({ id: "b" });
    source.completeRun("b", { status: "completed" });
    expect(source.listRuns().map((r) => r.id)).toEqual(["a"]);
    expect(source.snapshot()).toEqual({ states: [source.getRun("a")], cursor: source.lastId });
    expect(source.snapshot("b")?.states[0]?.status).toBe("completed");
    expect(source.snapshot("ghost")).toBeUndefined();
  });

  it("replays what came after an id, per run or for all, and answers null beyond its history", () => {
    source.createRun({ id: "a" });
    const aCreated = source.lastId as string;
    source.createRun({ id: "b" });
    const mark = source.lastId as string;
    const e1 = source.recordEvent("a", { type: "unit.started" });
    const e2 = source.recordEvent("b", { type: "unit.started" });
    const e3 = source.recordEvent("a", { type: "unit.completed" });
    expect(source.replay(mark)).toEqual([e1, e2, e3]);
    expect(source.replay(aCreated, "a")).toEqual([e1, e3]);
    // A run's log knows its own ids only: b's id is no position in a's log.
    expect(source.replay(mark, "a")).toBeNull();
    expect(source.replay(e3.id as string)).toEqual([]);
    // History of 5 holds envelopes 3..7: after 2 still reaches, after 1 (envelope 2 gone) does not.
    source.recordEvent("b", { type: "unit.completed" });
    source.recordEvent("b", { type: "unit.failed" });
    expect(source.replay(seen[1]?.id as string)).toHaveLength(5);
    expect(source.replay(seen[0]?.id as string)).toBeNull();
    // Ids it never issued: another process's, from the future, or garbage.
    expect(source.replay("1-1")).toBeNull();
    expect(source.replay(`${(source.lastId as string).split("-")[0]}-999`)).toBeNull();
    expect(source.replay("nonsense")).toBeNull();
  });

  it("forgets the oldest finished runs beyond maxFinishedRuns, never active ones", () => {
    const small = new MemoryRunSource({ maxFinishedRuns: 2 });
    for (const id of ["a", "b", "c"]) {
      small.createRun({ id });
      small.completeRun(id, { status: "completed" });
    }
    small.createRun({ id: "active" });
    expect(small.getRun("a")).toBeUndefined();
    expect(small.getRun("b")?.status).toBe("completed");
    expect(small.getRun("active")?.status).toBe("pending");
  });

  it("keeps recording when a subscriber throws, and reports it", () => {
    const reported: unknown[] = [];
    const s = new MemoryRunSource({ onListenerError: (e) => reported.push(e) });
    s.subscribe(() => {
      throw new Error("listener bug");
    });
    const got: Envelope[] = [];
    s.subscribe((e) => got.push(e));
    s.createRun({ id: "r" });
    expect(got).toHaveLength(1);
    expect(reported).toHaveLength(1);
  });

  it("keeps what JSON makes of the daemon's values: changing them afterwards changes no state and no history", () => {
    const meta = { owner: "ci", tags: ["a"], at: new Date("2026-01-01T00:00:00.000Z") };
    const created = source.createRun({ id: "r", meta });
    const detail = { attempt: 1 };
    source.recordEvent("r", { type: "unit.started", detail });
    meta.tags.push("b");
    (meta as Record<string, unknown>).n = 5n;
    detail.attempt = 2;
    (detail as Record<string, unknown>).self = detail;
    expect(created.meta).toEqual({ owner: "ci", tags: ["a"], at: "2026-01-01T00:00:00.000Z" });
    expect(source.getRun("r")).toEqual(created);
    expect(seen[1]?.data).toMatchObject({ detail: { attempt: 1 } });
    expect(() => JSON.stringify(source.replay(seen[0]?.id as string))).not.toThrow();
  });

  it("hands out frozen values: writing into what a writer call returned throws and changes nothing kept", () => {
    const created = source.createRun({ id: "r", meta: { owner: "ci", steps: [{ name: "build" }] } });
    const event = source.recordEvent("r", { type: "unit.started", detail: { attempt: 1 } });
    const updated = source.updateRun("r", { completed_units: 1 });
    const attempts: Array<() => void> = [
      () => Object.assign(created, { status: "completed" }),
      () => Object.assign((created.meta as { steps: object[] }).steps[0] as object, { name: "deploy" }),
      () => (created.meta as { steps: object[] }).steps.push({ name: "x" }),
      () => Object.assign(event, { runId: "other" }),
      () => Object.assign(event.data, { type: "NOT A TYPE" }),
      () => Object.assign(event.data.detail as object, { attempt: 2 }),
      () => Object.assign(updated, { completed_units: -1 }),
    ];
    for (const attempt of attempts) expect(attempt).toThrow(TypeError);
    expect(source.getRun("r")).toMatchObject({
      status: "pending",
      completed_units: 1,
      meta: { steps: [{ name: "build" }] },
    });
    const log = source.readLog({ runId: "r", limit: 10 });
    expect(log).toMatchObject({
      envelopes: [
        { type: "state", data: { status: "pending", completed_units: 0 } },
        { type: "event", runId: "r", data: { type: "unit.started", detail: { attempt: 1 } } },
        { type: "state", data: { completed_units: 1 } },
      ],
    });
  });

  it("rejects invalid options", () => {
    expect(codeOf(() => new MemoryRunSource({ historySize: 0 }))).toBe("invalid_option");
    expect(codeOf(() => new MemoryRunSource({ maxFinishedRuns: 1.5 }))).toBe("invalid_option");
  });
});
