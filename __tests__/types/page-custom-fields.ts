/**
 * Type tests of typed custom fields in the page: the same host types from the daemon's
 * MemoryRunSource through runcast/react's hooks. Compiled by `tsc` in the test command, also
 * under exactOptionalPropertyTypes (tsconfig.json beside this file), never run. Each
 * `@ts-expect-error` must meet an error, or tsc fails.
 */
import * as z from "zod";
import { MemoryRunSource, type RunEvent, RunEventSchema, type RunState, RunStateSchema } from "../../lib";
import { type RunsView, type RunView, useRun, useRuns } from "../../lib/react";

/** One module of the host's, shared by its daemon and its pages. */
interface DeployState extends RunState {
  units: string[];
}
interface DeployEvent extends RunEvent {
  type: "unit.started" | "unit.finished";
  unit: string;
}

// The daemon writes typed runs...
const daemon = new MemoryRunSource<DeployState, DeployEvent>();
daemon.createRun({ id: "deploy_1", units: ["api"] });
daemon.recordEvent("deploy_1", { type: "unit.started", unit: "api" });

// ...and a component reads them with the same types.
function DeployProgress(): string {
  const { state, events, status } = useRun<DeployState, DeployEvent>("/api/runs/deploy_1/stream", {
    from: "start",
    maxEvents: 50,
  });
  const units: string[] = state?.units ?? [];
  const started: string[] = events.filter((event) => event.type === "unit.started").map((event) => event.unit);
  // @ts-expect-error units are strings
  const counts: number[] = state?.units ?? [];
  return `${status}: ${units.join(",")} ${started.join(",")} ${counts.length}`;
}

function AllDeploys(): string[][] {
  const { runs } = useRuns<DeployState>("/api/stream", { tags: ["team:web"], maxFinishedRuns: undefined });
  return [...runs.values()].map((run) => run.units);
}

// The page's own schemas check the fields and type the view, without type arguments.
const DeployStateSchema = RunStateSchema.extend({ units: z.array(z.string()) });
const DeployEventSchema = RunEventSchema.extend({ unit: z.string() });
function Checked(): string[] {
  const { state, events } = useRun("/api/runs/deploy_1/stream", {
    schemas: { state: DeployStateSchema, event: DeployEventSchema },
  });
  const all = useRuns("/api/stream", { schemas: { state: DeployStateSchema } });
  return [
    ...(state?.units ?? []),
    ...events.map((event) => event.unit),
    ...[...all.runs.values()].flatMap((run) => run.units),
  ];
}
function NotARunState(): unknown {
  // @ts-expect-error a schema of something that is not a run state
  return useRun("/api/runs/r/stream", { schemas: { state: z.object({ units: z.array(z.string()) }) } });
}

// With the defaults, custom fields are unknown, as before.
function Plain(): unknown {
  const { state } = useRun("/api/runs/r/stream");
  // @ts-expect-error an undeclared field is unknown, not a string array
  const units: string[] | undefined = state?.units;
  return [state?.units, units];
}

// A type argument that is not a run state is refused.
// @ts-expect-error a run state needs id, status and completed_units
type NotAState = RunView<{ units: string[] }>;
const typedRuns: RunsView<DeployState>["runs"] | undefined = undefined;

export { AllDeploys, Checked, DeployProgress, NotARunState, type NotAState, Plain, typedRuns };
