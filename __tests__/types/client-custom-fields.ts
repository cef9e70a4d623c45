/**
 * Type tests of runcast/client's typed custom fields, compiled by `tsc` in the test command
 * (with the project's settings, and again with exactOptionalPropertyTypes: see
 * tsconfig.json beside this file). Each `@ts-expect-error` must meet an error, or tsc fails.
 */
import * as z from "zod";
import * as zm from "zod/mini";
import { type RunEvent, type RunState, watchAll, watchRun } from "../../lib/client";
import { RunEventSchema, RunStateSchema } from "../../lib/schema";

const noEventSource = {};

// With the page's schemas, the handlers' and the watcher's types follow from them.
const DeployState = RunStateSchema.extend({ units: z.array(z.string()), name: z.string().optional() });
const DeployEvent = RunEventSchema.extend({ unit: z.string(), durationMs: z.number() });
const deploy = watchRun(
  "/api/runs/r/stream",
  {
    onState: (state) => {
      const units: string[] = state.units;
      const name: string | undefined = state.name;
      // @ts-expect-error units are strings
      const counts: number[] = state.units;
      return [units, name, counts];
    },
    onEvent: (event) => {
      const ms: number = event.durationMs;
      const unit: string = event.unit;
      return [ms, unit];
    },
    onResync: (state, { reason }) => [state.units, reason],
    onComplete: (state) => state.units.length,
  },
  { schemas: { state: DeployState, event: DeployEvent }, ...noEventSource },
);
const units: string[] | undefined = deploy.state?.units;

// The same through watchAll, with zod/mini schemas.
const MiniState = zm.looseObject({
  id: zm.string(),
  status: zm.enum(["pending", "running", "completed", "failed", "cancelled"]),
  completed_units: zm.number(),
  units: zm.array(zm.string()),
});
const all = watchAll("/api/stream", { onState: (state) => state.units.join(",") }, { schemas: { state: MiniState } });
const allUnits: string[] | undefined = all.state.get("r")?.units;
all.close();

// Type arguments alone: typed, taken on trust (nothing checks the fields at run time).
interface BuildState extends RunState {
  units: string[];
}
interface BuildEvent extends RunEvent {
  step: number;
}
const build = watchAll<BuildState, BuildEvent>("/api/stream", {
  onState: (state) => state.units.join(","),
  onEvent: (event) => event.step + 1,
  onResync: (runs) => [...runs.values()].map((run) => run.units),
});
const buildRuns: ReadonlyMap<string, BuildState> = build.state;

// With the defaults, custom fields pass through as unknown.
watchRun("/api/runs/r/stream", {
  onState: (state) => {
    const anything: unknown = state.units;
    // @ts-expect-error an unknown field is not known to be a string array
    const list: string[] = state.units;
    return [anything, list];
  },
});

// A schema of something that is not a run state is refused.
// @ts-expect-error its output lacks id, status and completed_units
watchRun("/api/runs/r/stream", {}, { schemas: { state: z.object({ units: z.array(z.string()) }) } });

// A handler typed for other fields than the schema gives is refused.
watchRun(
  "/api/runs/r/stream",
  { onState: (state: RunState & { units: number[] }) => state.units },
  // @ts-expect-error the schema's units are strings, the handler wants numbers
  { schemas: { state: DeployState } },
);

// A type argument that is not a run state is refused.
// @ts-expect-error a run state needs id, status and completed_units
watchRun<{ units: string[] }>("/api/runs/r/stream");

// A misspelt option is refused.
// @ts-expect-error no option `heartbeatMS`
watchRun("/api/runs/r/stream", {}, { heartbeatMS: 1000 });

// Under exactOptionalPropertyTypes, options and handlers may be given as undefined.
const maybeStart: "start" | undefined = Math.random() > 1 ? "start" : undefined;
watchRun("/api/runs/r/stream", { onResync: undefined }, { from: maybeStart, retryMs: undefined });

export { allUnits, buildRuns, units };
