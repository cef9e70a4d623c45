import * as z from "zod";
import { type RunWatcher, watchRun } from "../../lib/client";
import { MemoryRunSource, RunEventSchema, RunStateSchema } from "../../lib/index";
import { eventually, serve, type TestServer } from "../helpers/server";
import { trackedEventSource } from "./harness";

describe("runcast/client with the page's own schemas for custom fields", () => {
  let t: TestServer;
  let watcher: RunWatcher<RunStateSchemaOutput> | undefined;
  type RunStateSchemaOutput = z.infer<typeof RunStateSchema>;

  afterEach(async () => {
    watcher?.close();
    watcher = undefined;
    await t.close();
  });

  it("checks custom fields, skips what the page's schema refuses, and delivers the schema's output", async () => {
    const source = new MemoryRunSource();
    t = await serve(source, { heartbeatMs: 60_000 });
    source.createRun({ id: "r", units: ["api", "web"] });
    const DeployState = RunStateSchema.extend({ units: z.array(z.string()) }).transform((state) => ({
      ...state,
      unitCount: state.units.length,
    }));
    const DeployEvent = RunEventSchema.extend({ durationMs: z.number() });
    const states: Array<{ unitCount: number; completed: number }> = [];
    const durations: number[] = [];
    const errors: string[] = [];
    const w = watchRun(
      `${t.url}/api/runs/r/stream`,
      {
        onState: (state) => states.push({ unitCount: state.unitCount, completed: state.completed_units }),
        onEvent: (event) => durations.push(event.durationMs),
        onError: (error) => errors.push(`${error.code}: ${error.message}`),
      },
      { ...trackedEventSource(), schemas: { state: DeployState, event: DeployEvent } },
    );
    watcher = w;
    await eventually(() => states.length === 1, "the snapshot");
    source.recordEvent("r", { type: "unit.finished", unit: "api", durationMs: 12 });
    source.recordEvent("r", { type: "unit.finished", unit: "web", durationMs: "slow" });
    source.updateRun("r", { status: "running", completed_units: 1, units: "api" });
    source.updateRun("r", { completed_units: 2, units: ["api", "web", "db"] });
    await eventually(() => states.length === 2, "the valid state change");

    expect(durations).toEqual([12]);
    expect(states).toEqual([
      { unitCount: 2, completed: 0 },
      { unitCount: 3, completed: 2 },
    ]);
    expect(errors).toEqual([
      "invalid_frame: skipped an invalid event frame: durationMs: Invalid input: expected number, received string",
      "invalid_frame: skipped an invalid state frame: units: Invalid input: expected array, received string",
    ]);
    expect(w.state?.unitCount).toBe(3);
  });

  it("refuses frames to an asynchronous schema instead of delivering them late", async () => {
    const source = new MemoryRunSource();
    t = await serve(source, { heartbeatMs: 60_000 });
    source.createRun({ id: "r" });
    const errors: string[] = [];
    const Slow = RunStateSchema.refine(async () => true);
    watcher = watchRun(
      `${t.url}/api/runs/r/stream`,
      { onError: (error) => errors.push(error.message) },
      { ...trackedEventSource(), schemas: { state: Slow } },
    );
    await eventually(() => errors.length === 1, "the refusal");
    expect(errors[0]).toContain("asynchronous");
    expect(watcher.state).toBeUndefined();
  });
});
