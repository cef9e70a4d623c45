/**
 * Type tests of typed custom fields on the server side (schemas, the source contract,
 * MemoryRunSource, RedisRunSource, sseRouter), compiled by `tsc` in the test command with
 * the project's settings and again with exactOptionalPropertyTypes (tsconfig.json beside this
 * file). Never run. Each `@ts-expect-error` must meet an error, or tsc fails.
 */
import * as z from "zod";
import {
  type Envelope,
  type EnvelopeSchema,
  MemoryRunSource,
  type RunEvent,
  RunEventSchema,
  type RunEventSource,
  type RunState,
  RunStateSchema,
  type SseRouter,
  sseRouter,
} from "../../lib";
import { RedisRunSource } from "../../lib/redis";

// ---- the host's own types ------------------------------------------------------------------

interface DeployState extends RunState {
  units: string[];
  name?: string;
}
interface UnitStarted extends RunEvent {
  type: "unit.started";
  unit: string;
}
interface UnitFinished extends RunEvent {
  type: "unit.finished";
  unit: string;
  durationMs: number;
}
type DeployEvent = UnitStarted | UnitFinished;

/** Compiles only when `A` and `B` are the same type. */
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
function holds<T extends true>(): T | undefined {
  return undefined;
}

// With its defaults, Envelope is exactly what EnvelopeSchema parses.
holds<Same<Envelope, z.infer<typeof EnvelopeSchema>>>();
holds<Same<Envelope<DeployState, DeployEvent>["type"], "event" | "state" | "complete">>();

// ---- MemoryRunSource: typed from createRun to getRun and snapshot ----------------------------

const memory = new MemoryRunSource<DeployState, DeployEvent>({ historySize: 100 });
const created: DeployState = memory.createRun({ id: "deploy_1", units: ["api", "web"], total_units: 2 });
const createdUnits: string[] = created.units;
memory.updateRun("deploy_1", { completed_units: 1, units: ["api", "web", "db"], name: "nightly" });
memory.recordEvent("deploy_1", { type: "unit.started", unit: "api" });
const finished = memory.recordEvent("deploy_1", { type: "unit.finished", unit: "api", durationMs: 1200 });
if (finished.type === "event" && finished.data.type === "unit.finished") {
  const ms: number = finished.data.durationMs;
  void ms;
}
const read = memory.getRun("deploy_1");
const readUnits: string[] | undefined = read?.units;
const snapshotUnits: string[] | undefined = memory.snapshot("deploy_1")?.states[0]?.units;
const listedUnits: string[][] = memory.listRuns().map((run) => run.units);
const completion = memory.getCompletion("deploy_1");
const finalUnits: string[] | undefined = completion?.type === "complete" ? completion.data.units : undefined;
memory.subscribe((envelope) => {
  if (envelope.type === "state") {
    const units: string[] = envelope.data.units;
    // @ts-expect-error units are strings
    const counts: number[] = envelope.data.units;
    return [units, counts];
  }
  return envelope.data.unit;
});
const page = memory.readLog({ runId: "deploy_1", limit: 10 });
const pagedUnits = page !== undefined && "envelopes" in page ? page.envelopes.map((e) => e.data.unit) : [];
memory.completeRun("deploy_1", { status: "completed", completed_units: 3, units: ["api", "web", "db"] });

// Misspelt built-in fields do not compile once the State is the host's own.
// @ts-expect-error total_unit is not a field (total_units is)
memory.createRun({ id: "deploy_2", units: [], total_unit: 5 });
// @ts-expect-error complete_units is not a field (completed_units is)
memory.updateRun("deploy_1", { complete_units: 2 });
// @ts-expect-error total_unit is not a field (total_units is)
memory.completeRun("deploy_1", { status: "failed", total_unit: 3 });
// @ts-expect-error nor is a field DeployState does not declare
memory.updateRun("deploy_1", { unts: ["api"] });
// @ts-expect-error a declared field keeps its type
memory.updateRun("deploy_1", { units: [1, 2] });
// @ts-expect-error a required custom field is required for the first state
memory.createRun({ id: "deploy_3" });
// @ts-expect-error updateRun never sets a terminal status
memory.updateRun("deploy_1", { status: "completed" });
// @ts-expect-error completeRun needs one
memory.completeRun("deploy_1", { status: "running" });

// Events: each declared type with its own fields.
// @ts-expect-error unit.finished needs durationMs
memory.recordEvent("deploy_1", { type: "unit.finished", unit: "api" });
// @ts-expect-error an event type DeployEvent does not declare
memory.recordEvent("deploy_1", { type: "unit.strated", unit: "api" });
// @ts-expect-error durationMs is a number
memory.recordEvent("deploy_1", { type: "unit.finished", unit: "api", durationMs: "1s" });

// A type argument that is not a run state is refused.
// @ts-expect-error a run state needs id, status and completed_units
new MemoryRunSource<{ units: string[] }>();

// ---- the defaults: no change for existing code -----------------------------------------------

const plain = new MemoryRunSource();
plain.createRun({ id: "plain_1", units: ["api"], anything: { nested: true } });
// Unknown fields pass through, misspelt ones too: nothing declares what the run holds.
plain.updateRun("plain_1", { total_unit: 5, owner: "ops" });
plain.recordEvent("plain_1", { type: "unit.started", unit: "api", attempt: 2 });
const plainUnits: unknown = plain.getRun("plain_1")?.units;
// @ts-expect-error an undeclared field is unknown, not a string array
const plainList: string[] | undefined = plain.getRun("plain_1")?.units;
// @ts-expect-error the built-in fields are still checked
plain.updateRun("plain_1", { completed_units: "two" });

// ---- user zod schemas extending the built-in ones ----------------------------------------------

const BuildStateSchema = RunStateSchema.extend({ artifacts: z.array(z.string()), commit: z.string().optional() });
const BuildEventSchema = RunEventSchema.extend({ step: z.number() });
type BuildState = z.infer<typeof BuildStateSchema>;
type BuildEvent = z.infer<typeof BuildEventSchema>;
const builds = new MemoryRunSource<BuildState, BuildEvent>();
const artifacts: string[] = builds.createRun({ id: "build_1", artifacts: [] }).artifacts;
builds.recordEvent("build_1", { type: "build.step", step: 1 });
// @ts-expect-error complete_units is not a field
builds.updateRun("build_1", { complete_units: 1 });
// @ts-expect-error step is required by BuildEventSchema
builds.recordEvent("build_1", { type: "build.step" });

// ---- sseRouter: the source's types carry over ---------------------------------------------------

const router = sseRouter(memory, { heartbeatMs: 15_000 });
const typedRouter: SseRouter<DeployState, DeployEvent> = router;
router.broadcast({
  type: "state",
  runId: "deploy_1",
  data: { id: "deploy_1", status: "running", completed_units: 1, units: ["api"] },
});
router.broadcast({
  type: "state",
  runId: "deploy_1",
  // @ts-expect-error units are strings
  data: { id: "deploy_1", status: "running", completed_units: 1, units: [1] },
});
// A typed source still fits where any source is taken (an existing host's helper, say).
const anySource: RunEventSource = memory;
sseRouter(plain).broadcast({
  type: "state",
  runId: "plain_1",
  data: { id: "plain_1", status: "running", completed_units: 0, x: 1 },
});

// A host's own adapter, typed.
const adapter: RunEventSource<DeployState, DeployEvent> = {
  getRun: async (id) => ({ id, status: "running", completed_units: 0, units: [] }),
  listRuns: () => [],
  subscribe: () => () => undefined,
  // Under exactOptionalPropertyTypes, an absent cursor may be given as undefined.
  snapshot: () => ({ states: [], cursor: undefined }),
};
const adapterRouter: SseRouter<DeployState, DeployEvent> = sseRouter(adapter);
const badAdapter: RunEventSource<DeployState> = {
  // @ts-expect-error the adapter's states lack units
  getRun: (id) => ({ id, status: "running", completed_units: 0 }),
  listRuns: () => [],
  subscribe: () => () => undefined,
};

// ---- RedisRunSource: the same writer and reader types ------------------------------------------

async function onRedis(): Promise<string[] | undefined> {
  const redis = new RedisRunSource<DeployState, DeployEvent>({ prefix: "deploys", url: undefined });
  const state: DeployState = await redis.createRun({ id: "deploy_9", units: ["api"] });
  await redis.recordEvent("deploy_9", { type: "unit.finished", unit: "api", durationMs: 10 });
  // @ts-expect-error complete_units is not a field
  await redis.updateRun("deploy_9", { complete_units: 1 });
  // @ts-expect-error total_unit is not a field
  await redis.completeRun("deploy_9", { status: "completed", total_unit: 1 });
  const snapshot = await redis.snapshot();
  const redisRouter: SseRouter<DeployState, DeployEvent> = sseRouter(redis);
  await redisRouter.close();
  await redis.close();
  return [...state.units, ...(snapshot.states[0]?.units ?? []), ...((await redis.getRun("deploy_9"))?.units ?? [])];
}

// ---- exactOptionalPropertyTypes: optional fields and options may be given as undefined ----------

const maybe: number | undefined = Math.random() > 1 ? 1 : undefined;
new MemoryRunSource({ historySize: maybe, finishedRunTtlMs: undefined });
plain.createRun({ id: "plain_2", total_units: maybe, status: undefined });
plain.recordEvent("plain_2", { type: "unit.started", unit: undefined, ts: undefined });
sseRouter(plain, { heartbeatMs: maybe, authorize: undefined, onError: undefined });

export {
  adapterRouter,
  anySource,
  artifacts,
  badAdapter,
  createdUnits,
  finalUnits,
  listedUnits,
  onRedis,
  pagedUnits,
  plainList,
  plainUnits,
  readUnits,
  snapshotUnits,
  typedRouter,
};
