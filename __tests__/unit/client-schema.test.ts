import fc from "fast-check";
import { checkRunEvent, checkRunState, isTerminalStatus as clientIsTerminal } from "../../lib/client/schema";
import { describeIssues, isTerminalStatus, RUN_STATUSES, RunEventSchema, RunStateSchema } from "../../lib/schema";

/** The server's verdict in the client's shape: the value, or the one-line reason. */
function server(schema: typeof RunStateSchema | typeof RunEventSchema, data: unknown) {
  const result = schema.safeParse(data);
  return result.success ? { ok: true, value: result.data } : { ok: false, why: describeIssues(result.error) };
}

const runId = fc.oneof(
  fc.stringMatching(/^[A-Za-z0-9._:-]{1,128}$/),
  fc.string({ maxLength: 140 }),
  fc.constantFrom("", "a".repeat(129), "a b", "run\n1", "ü"),
  fc.integer(),
);
const units = fc.oneof(
  fc.nat(),
  fc.integer(),
  fc.double(),
  fc.constantFrom(Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER + 2, -0, Number.NaN, Number.POSITIVE_INFINITY),
  fc.string({ maxLength: 3 }),
  fc.constant(null),
);
const extra = fc.dictionary(
  fc.constantFrom("name", "tags", "units", "reason", "__proto__x"),
  fc.oneof(fc.string(), fc.array(fc.string(), { maxLength: 3 }), fc.integer(), fc.constant(null)),
);
const state = fc
  .tuple(
    fc.record(
      {
        id: runId,
        status: fc.oneof(fc.constantFrom(...RUN_STATUSES, "done", "Running", ""), fc.integer()),
        completed_units: units,
        total_units: fc.oneof(units, fc.constant(undefined)),
      },
      { requiredKeys: [] },
    ),
    extra,
  )
  .map(([fields, more]) => ({ ...more, ...fields }));
const timestamp = fc.oneof(
  fc.date({ noInvalidDate: true }).map((date) => date.toISOString()),
  fc.date({ noInvalidDate: true }).map((date) => date.toISOString().replace("Z", "+02:00")),
  fc.date({ noInvalidDate: true }).map((date) => date.toISOString().slice(0, 19)),
  fc.constantFrom("2026-01-01T00:00:00Z", "2026-13-01T00:00:00Z", "2026-01-01 00:00:00Z", "yesterday", ""),
  fc.integer(),
);
const event = fc
  .tuple(
    fc.record(
      {
        type: fc.oneof(
          fc.stringMatching(/^[a-z][a-z0-9_-]{0,8}(\.[a-z][a-z0-9_-]{0,8}){0,3}$/),
          fc.constantFrom("unit.started", "Unit.Started", "unit..x", ".x", "x".repeat(129), ""),
          fc.string({ maxLength: 12 }),
        ),
        run_id: runId,
        unit: fc.oneof(fc.string({ maxLength: 300 }), fc.constant(undefined), fc.integer()),
        ts: timestamp,
      },
      { requiredKeys: [] },
    ),
    extra,
  )
  .map(([fields, more]) => ({ ...more, ...fields }));
const notAnObject = fc.oneof(fc.constant(null), fc.integer(), fc.string(), fc.array(fc.integer(), { maxLength: 2 }));

describe("the client's validation (zod/mini) and runcast's schemas", () => {
  it("accept and refuse the same run states, with the same values and the same messages", () => {
    fc.assert(
      fc.property(fc.oneof(state, notAnObject), (data) => {
        expect(checkRunState(data)).toEqual(server(RunStateSchema, data));
      }),
      { numRuns: 2000 },
    );
  });

  it("accept and refuse the same run events, with the same values and the same messages", () => {
    fc.assert(
      fc.property(fc.oneof(event, notAnObject), (data) => {
        expect(checkRunEvent(data)).toEqual(server(RunEventSchema, data));
      }),
      { numRuns: 2000 },
    );
  });

  it("agree on which statuses end a run", () => {
    for (const status of [...RUN_STATUSES, "done", ""]) expect(clientIsTerminal(status)).toBe(isTerminalStatus(status));
  });
});
