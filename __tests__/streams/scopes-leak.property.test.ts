import fc from "fast-check";
import { createStreamToken, type Envelope, MemoryRunSource, type StreamScope } from "../../lib/index";
import { serve, type TestServer, within } from "../helpers/server";
import { SseStream } from "../helpers/sse";

/**
 * The leak test: random runs with random tags, clients with random token scopes, `authorize`
 * scopes and filters, random interleavings of writes, connects, drops and resumes. Every
 * client must receive exactly the frames of the runs in its view, in order, once: its
 * snapshot, what it missed (replayed from the history, or a resync and a fresh snapshot when
 * the history no longer reaches back), then live frames; and no byte naming another run.
 */

const SECRET = "leak-test-secret-of-at-least-32-bytes";
/** Run ids that are never substrings of one another, so a byte check can find them. */
const RUN_IDS = ["ra0", "rb1", "rc2", "rd3", "re4", "rf5"];
const TAGS = ["tg:p", "tg:q", "tg:r", "tg:s"];

interface ClientSpec {
  token: StreamScope | undefined;
  authorize: StreamScope | undefined;
  /** Filters of a global client (a run's stream takes none). */
  filter: StreamScope | undefined;
  /** Set for a client of one run's stream: that run's index. */
  run?: number | undefined;
}

interface Expected {
  event: string;
  id: string | undefined;
  data: unknown;
}

const scopeArb: fc.Arbitrary<StreamScope | undefined> = fc.option(
  fc.record({ tags: fc.subarray(TAGS), runs: fc.subarray(RUN_IDS) }, { requiredKeys: [] }),
  { nil: undefined },
);
/** A filter lists at least one entry (an empty `?tags=` is a 400). */
const filterArb: fc.Arbitrary<StreamScope | undefined> = fc.option(
  fc
    .record({
      tags: fc.option(fc.subarray(TAGS, { minLength: 1 }), { nil: undefined }),
      runs: fc.option(fc.subarray(RUN_IDS, { minLength: 1 }), { nil: undefined }),
    })
    .filter((f) => f.tags !== undefined || f.runs !== undefined),
  { nil: undefined },
);

const scenarioArb = fc.record({
  historySize: fc.integer({ min: 3, max: 60 }),
  /** The router's memory of recent frames on (its default), or off: resumes from the source's history alone. */
  resumeCache: fc.boolean(),
  /** Live frames written every turn, or held up to 5 ms between writes (`coalesceMs`). */
  coalesceMs: fc.constantFrom(0, 5),
  runTags: fc.tuple(...RUN_IDS.map(() => fc.subarray(TAGS, { maxLength: 2 }))),
  /** Runs created before the router exists: their tags must be looked up. */
  early: fc.subarray([0, 1, 2, 3, 4, 5]),
  clients: fc.array(
    fc.record(
      {
        token: scopeArb,
        authorize: scopeArb,
        filter: filterArb,
        run: fc.option(fc.nat(5), { nil: undefined, freq: 3 }),
      },
      { requiredKeys: ["token", "authorize", "filter"] },
    ),
    {
      minLength: 1,
      maxLength: 4,
    },
  ),
  commands: fc.array(
    fc.oneof(
      { weight: 1, arbitrary: fc.record({ kind: fc.constant("create" as const), run: fc.nat(5) }) },
      { weight: 6, arbitrary: fc.record({ kind: fc.constant("event" as const), run: fc.nat(5) }) },
      { weight: 2, arbitrary: fc.record({ kind: fc.constant("update" as const), run: fc.nat(5) }) },
      { weight: 1, arbitrary: fc.record({ kind: fc.constant("complete" as const), run: fc.nat(5) }) },
      { weight: 2, arbitrary: fc.record({ kind: fc.constant("connect" as const), client: fc.nat(3) }) },
      { weight: 2, arbitrary: fc.record({ kind: fc.constant("drop" as const), client: fc.nat(3) }) },
    ),
    { minLength: 10, maxLength: 90, size: "medium" },
  ),
});

function matches(scope: StreamScope, runId: string, tags: readonly string[]): boolean {
  return (scope.runs ?? []).includes(runId) || tags.some((tag) => (scope.tags ?? []).includes(tag));
}

/** The scopes a client is under: a token that carries neither claim is unscoped; an authorize scope `{}` lets nothing through. */
function scopesOf(spec: ClientSpec): StreamScope[] {
  const token = spec.token === undefined || "tags" in spec.token || "runs" in spec.token ? spec.token : undefined;
  return [token, spec.authorize].filter((scope): scope is StreamScope => scope !== undefined);
}

function inView(spec: ClientSpec, runId: string, tags: readonly string[]): boolean {
  if (spec.run !== undefined) return runId === RUN_IDS[spec.run];
  const all = [...scopesOf(spec), ...(spec.filter === undefined ? [] : [spec.filter])];
  return all.every((scope) => matches(scope, runId, tags));
}

/** What a run's stream answers before streaming: 403 outside the scope (a missing run too, unless every scope lists it), 404 for a missing run. */
function runStreamStatus(spec: ClientSpec, runId: string, exists: boolean, tags: readonly string[]): number {
  const scopes = scopesOf(spec);
  const listed = scopes.every((scope) => (scope.runs ?? []).includes(runId));
  if (!listed && (!exists || !scopes.every((scope) => matches(scope, runId, tags)))) return 403;
  return exists ? 200 : 404;
}

function seqOf(id: string): number {
  return Number(id.split("-")[1]);
}

/** One client across its connections. */
class Watcher {
  stream: SseStream | undefined;
  expected: Expected[] = [];
  lastId: string | undefined;
  /** Counts of the paths its connections started by, to show the test covers them all. */
  constructor(readonly spec: ClientSpec) {}

  sees(runId: string, tags: readonly string[]): boolean {
    return inView(this.spec, runId, tags);
  }
}

function received(stream: SseStream): Expected[] {
  return stream.frames.map((f) => ({ event: f.event, id: f.id, data: f.json }));
}

/** One generated scenario. */
type Scenario = typeof scenarioArb extends fc.Arbitrary<infer S> ? S : never;

/** A scenario past a short history (the first client resumes after it was trimmed), with the router's memory on (and frames held up to 5 ms) or off. */
function pastShortHistory(resumeCache: boolean): Scenario {
  return {
    historySize: 3,
    resumeCache,
    coalesceMs: resumeCache ? 5 : 0,
    runTags: [["tg:p"], ["tg:q"], [], ["tg:p", "tg:r"], [], []],
    early: [0],
    clients: [
      { token: { tags: ["tg:p"] }, authorize: undefined, filter: undefined },
      { token: undefined, authorize: { runs: ["rb1", "rd3"] }, filter: { tags: ["tg:r"] } },
      { token: { tags: ["tg:p"] }, authorize: undefined, filter: undefined, run: 3 },
    ],
    commands: [
      { kind: "create", run: 1 },
      { kind: "connect", client: 0 },
      { kind: "connect", client: 1 },
      { kind: "event", run: 0 },
      { kind: "create", run: 3 },
      { kind: "connect", client: 2 },
      { kind: "drop", client: 0 },
      { kind: "event", run: 1 },
      { kind: "event", run: 3 },
      { kind: "drop", client: 2 },
      { kind: "event", run: 1 },
      { kind: "event", run: 1 },
      { kind: "connect", client: 0 },
      { kind: "drop", client: 1 },
      { kind: "event", run: 3 },
      { kind: "connect", client: 1 },
      { kind: "update", run: 0 },
      { kind: "event", run: 3 },
      { kind: "connect", client: 2 },
      { kind: "complete", run: 3 },
    ],
  };
}

describe("scoped streams never leak (property-based)", () => {
  it("every client gets exactly its view's frames, in order, once, through snapshots, replays and resyncs", async () => {
    const paths = { snapshot: 0, replay: 0, heldReplay: 0, resync: 0, runSnapshot: 0, runReplay: 0 };
    await fc.assert(
      fc.asyncProperty(scenarioArb, async (scenario) => {
        const source = new MemoryRunSource({ historySize: scenario.historySize });
        const tagsOf = (runId: string): readonly string[] => scenario.runTags[RUN_IDS.indexOf(runId)] ?? [];
        const log: Envelope[] = [];
        const watchers = scenario.clients.map((spec) => new Watcher(spec));
        source.subscribe((envelope) => {
          log.push(envelope);
          for (const w of watchers) {
            if (w.stream !== undefined && w.sees(envelope.runId, tagsOf(envelope.runId))) {
              w.expected.push({ event: envelope.type, id: envelope.id, data: envelope.data });
            }
          }
        });
        const create = (i: number): void => {
          const id = RUN_IDS[i] as string;
          if (source.getRun(id) === undefined) source.createRun({ id, tags: [...tagsOf(id)] });
        };
        for (const i of scenario.early) create(i);

        // Envelopes from this one on reach the router live: with its memory on, a resume from any of them is exact.
        const firstLive = source.lastId === undefined ? 1 : seqOf(source.lastId) + 1;
        const t: TestServer = await serve(source, {
          ...(scenario.resumeCache ? {} : { resumeCacheBytes: 0 }),
          coalesceMs: scenario.coalesceMs,
          tokens: { secret: SECRET },
          authorize: (req) => {
            const header = req.get("x-scope");
            return header === undefined ? true : (JSON.parse(header) as StreamScope);
          },
        });

        const finish = async (w: Watcher): Promise<void> => {
          const stream = w.stream as SseStream;
          w.stream = undefined;
          stream.close();
          const got = received(stream);
          // Dropped at any moment: what arrived is a prefix of what was due, byte-exact.
          expect(got).toEqual(w.expected.slice(0, got.length));
          const withId = got.filter((f) => f.id !== undefined).at(-1);
          if (withId !== undefined) w.lastId = withId.id;
          for (const runId of RUN_IDS) {
            if (!w.sees(runId, tagsOf(runId))) expect(stream.raw).not.toContain(runId);
          }
        };

        /** A client of one run's stream: refused outside its scope, else exactly that run's frames. */
        const connectRun = async (w: Watcher, query: URLSearchParams): Promise<void> => {
          const runId = RUN_IDS[w.spec.run as number] as string;
          const state = source.getRun(runId);
          const headers: Record<string, string> = {};
          if (w.spec.authorize !== undefined) headers["x-scope"] = JSON.stringify(w.spec.authorize);
          if (w.lastId !== undefined) headers["Last-Event-ID"] = w.lastId;
          const stream = await SseStream.open(`${t.url}/api/runs/${runId}/stream?${query}`, headers);
          const status = runStreamStatus(w.spec, runId, state !== undefined, tagsOf(runId));
          const ofRun = log.filter((e) => e.runId === runId);
          const missed =
            w.lastId === undefined ? [] : ofRun.filter((e) => seqOf(e.id as string) > seqOf(w.lastId as string));
          const finished = state !== undefined && state.status === "completed";
          if (status === 200 && w.lastId !== undefined && missed.length === 0 && finished) {
            expect(stream.status).toBe(204);
            stream.close();
            return;
          }
          expect({ runId, status: stream.status }).toEqual({ runId, status });
          if (status !== 200) {
            await stream.end();
            // A refusal is one error body: nothing of the run (a 404 names only the id asked for).
            expect(JSON.parse(stream.raw).error.code).toBe(status === 403 ? "forbidden" : "run_not_found");
            expect(stream.frames).toEqual([]);
            stream.close();
            return;
          }
          w.stream = stream;
          w.expected = [];
          if (w.lastId !== undefined) {
            paths.runReplay++;
            for (const e of missed) w.expected.push({ event: e.type, id: e.id, data: e.data });
          } else if (finished) {
            const complete = ofRun.at(-1) as Envelope;
            w.expected.push(
              { event: "state", id: undefined, data: state },
              { event: "complete", id: complete.id, data: complete.data },
            );
          } else {
            paths.runSnapshot++;
            w.expected.push({ event: "state", id: ofRun.at(-1)?.id, data: state });
          }
        };

        const connect = async (w: Watcher): Promise<void> => {
          const query = new URLSearchParams();
          const token = await createStreamToken(SECRET, { ...w.spec.token, expiresIn: "10m" });
          query.set("token", token);
          if (w.spec.run !== undefined) {
            await connectRun(w, query);
            return;
          }
          if (w.spec.filter?.tags !== undefined) query.set("tags", w.spec.filter.tags.join(","));
          if (w.spec.filter?.runs !== undefined) query.set("runs", w.spec.filter.runs.join(","));
          const headers: Record<string, string> = {};
          if (w.spec.authorize !== undefined) headers["x-scope"] = JSON.stringify(w.spec.authorize);
          if (w.lastId !== undefined) headers["Last-Event-ID"] = w.lastId;
          // Nothing is written until the head arrives, and the start is decided before it:
          // the expected opening is computed from the source as it is now.
          const stream = await SseStream.open(`${t.url}/api/stream?${query}`, headers);
          expect(stream.status).toBe(200);
          w.stream = stream;
          w.expected = [];
          const newest = source.lastId;
          const oldest = newest === undefined ? 1 : Math.max(1, seqOf(newest) - scenario.historySize + 1);
          const snapshot = (): void => {
            const states = source.listRuns().filter((s) => w.sees(s.id, tagsOf(s.id)));
            states.forEach((state, i) => {
              w.expected.push({ event: "state", id: i === states.length - 1 ? newest : undefined, data: state });
            });
          };
          if (w.lastId === undefined) {
            paths.snapshot++;
            snapshot();
          } else if (seqOf(w.lastId) < oldest - 1 && !(scenario.resumeCache && seqOf(w.lastId) >= firstLive)) {
            paths.resync++;
            w.expected.push({ event: "resync", id: undefined, data: { reason: "trimmed" } });
            snapshot();
          } else {
            paths.replay++;
            if (seqOf(w.lastId) < oldest - 1) paths.heldReplay++;
            for (const e of log) {
              if (seqOf(e.id as string) > seqOf(w.lastId) && w.sees(e.runId, tagsOf(e.runId))) {
                w.expected.push({ event: e.type, id: e.id, data: e.data });
              }
            }
          }
        };

        try {
          let n = 0;
          for (const command of scenario.commands) {
            const runId = RUN_IDS[command.kind === "connect" || command.kind === "drop" ? 0 : command.run] as string;
            const state = source.getRun(runId);
            const active = state !== undefined && state.status !== "completed";
            switch (command.kind) {
              case "create":
                create(command.run);
                break;
              case "event":
                if (active) source.recordEvent(runId, { type: "unit.progress", n: n++ });
                break;
              case "update":
                if (active) source.updateRun(runId, { completed_units: n++ });
                break;
              case "complete":
                if (active) source.completeRun(runId, { status: "completed" });
                break;
              case "connect": {
                const w = watchers[command.client % watchers.length] as Watcher;
                if (w.stream === undefined) await connect(w);
                break;
              }
              case "drop": {
                const w = watchers[command.client % watchers.length] as Watcher;
                if (w.stream !== undefined) await finish(w);
                break;
              }
            }
          }
          for (const w of watchers) {
            if (w.stream === undefined) continue;
            const stream = w.stream;
            await within(
              stream.until(() => stream.frames.length >= w.expected.length, "every due frame"),
              "every due frame",
              5000,
            ).catch(() => undefined);
            expect(received(stream)).toEqual(w.expected);
            await finish(w);
          }
        } finally {
          for (const w of watchers) w.stream?.close();
          await t.close();
        }
      }),
      {
        numRuns: 40,
        // Run first, so every way a stream starts is reached whatever the seed: a resume
        // past a short history (resync), one within it (replay), and fresh snapshots.
        examples: [
          [pastShortHistory(false)],
          // The same with the router's memory on: served exactly.
          [pastShortHistory(true)],
          [
            {
              // A resume longer than the first page: the pages read after it are filtered too.
              historySize: 60,
              resumeCache: true,
              coalesceMs: 0,
              runTags: [["tg:p"], ["tg:q"], [], [], [], []],
              early: [],
              clients: [{ token: { tags: ["tg:p"] }, authorize: undefined, filter: undefined }],
              commands: [
                { kind: "create", run: 0 },
                { kind: "create", run: 1 },
                { kind: "connect", client: 0 },
                { kind: "event", run: 0 },
                { kind: "drop", client: 0 },
                ...Array.from({ length: 40 }, (_, i) => ({ kind: "event" as const, run: i % 2 })),
                { kind: "connect", client: 0 },
                { kind: "event", run: 1 },
                { kind: "event", run: 0 },
              ],
            },
          ],
        ],
      },
    );
    // The interleavings reached every way a stream starts.
    expect(paths.snapshot).toBeGreaterThan(0);
    expect(paths.replay).toBeGreaterThan(0);
    expect(paths.resync).toBeGreaterThan(0);
    // Resumes past the source's history, served exactly from the router's memory.
    expect(paths.heldReplay).toBeGreaterThan(0);
    expect(paths.runSnapshot).toBeGreaterThan(0);
    expect(paths.runReplay).toBeGreaterThan(0);
  }, 120_000);
});
