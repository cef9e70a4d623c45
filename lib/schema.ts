import * as z from "zod";
import { jsonDataProblem } from "./json-data";

/** Run ids: 1 to 128 characters of `[A-Za-z0-9._:-]`. Enforced everywhere a run id enters runcast. */
export const RUN_ID_PATTERN = /^[A-Za-z0-9._:-]{1,128}$/;

/**
 * Event types: dotted, lowercase names such as `unit.started` (at most 128 characters).
 * Kept to this alphabet so a type can never smuggle a line break into a frame.
 */
export const EVENT_TYPE_PATTERN = /^(?=.{1,128}$)[a-z][a-z0-9_-]*(?:\.[a-z][a-z0-9_-]*)*$/;

/**
 * Envelope ids: opaque cursors of 1 to 256 printable ASCII characters without spaces,
 * so an id can never contain CR, LF or NUL and always survives an SSE `id:` line.
 */
export const ENVELOPE_ID_PATTERN = /^[\x21-\x7e]{1,256}$/;

/** Run tags: 1 to 128 characters of `[A-Za-z0-9._:-]`, such as `user:42` or `team:web`. */
export const TAG_PATTERN = /^[A-Za-z0-9._:-]{1,128}$/;

/** The most tags one run may carry. */
export const MAX_RUN_TAGS = 32;

/** Every status a run can have. */
export const RUN_STATUSES = ["pending", "running", "completed", "failed", "cancelled"] as const;
/** The statuses that end a run. */
export const TERMINAL_STATUSES = ["completed", "failed", "cancelled"] as const;

/** A run status. */
export type RunStatus = (typeof RUN_STATUSES)[number];
/** A status that ends a run. */
export type TerminalStatus = (typeof TERMINAL_STATUSES)[number];

/** Whether `status` ends a run. */
export function isTerminalStatus(status: string): status is TerminalStatus {
  return status === "completed" || status === "failed" || status === "cancelled";
}

/** Whether `id` is a valid run id. */
export function isValidRunId(id: unknown): id is string {
  return typeof id === "string" && RUN_ID_PATTERN.test(id);
}

/** Whether `tag` is a valid run tag. */
export function isValidTag(tag: unknown): tag is string {
  return typeof tag === "string" && TAG_PATTERN.test(tag);
}

/** Schema of a run tag. */
export const TagSchema = z.string().regex(TAG_PATTERN, "a tag is 1 to 128 characters of [A-Za-z0-9._:-]");

/** Schema of a run id. */
export const RunIdSchema = z.string().regex(RUN_ID_PATTERN, "a run id is 1 to 128 characters of [A-Za-z0-9._:-]");

/** Schema of a run status. */
export const RunStatusSchema = z.enum(RUN_STATUSES);

/** Schema of an envelope id. */
export const EnvelopeIdSchema = z
  .string()
  .regex(ENVELOPE_ID_PATTERN, "an envelope id is 1 to 256 printable ASCII characters without spaces");

/** Schema of an event type. */
export const EventTypeSchema = z
  .string()
  .regex(EVENT_TYPE_PATTERN, "an event type is a dotted lowercase name such as unit.started");

/**
 * A run's state: `{ id, status, completed_units, total_units?, tags?, ... }`. `tags` (up to
 * 32) are set when the run is created and never change; scoped clients see a run by them.
 * Fields beyond these pass through untouched.
 */
export const RunStateSchema = z.looseObject({
  id: RunIdSchema,
  status: RunStatusSchema,
  completed_units: z.number().int().nonnegative(),
  total_units: z.number().int().nonnegative().optional(),
  tags: z.array(TagSchema).max(MAX_RUN_TAGS, `a run carries at most ${MAX_RUN_TAGS} tags`).optional(),
});

/**
 * One thing that happened in a run: `{ type, run_id, unit?, ts, ... }`, where `ts` is an
 * ISO 8601 timestamp. Fields beyond these pass through untouched.
 */
export const RunEventSchema = z.looseObject({
  type: EventTypeSchema,
  run_id: RunIdSchema,
  unit: z.string().min(1).max(256).optional(),
  ts: z.iso.datetime({ offset: true }),
});

/**
 * A run state that can go on the wire: {@link RunStateSchema}, and JSON data throughout (no
 * BigInt, cycle, function, `NaN`...; see `json-data.ts`). What runcast checks a source's
 * snapshot states with. Kept apart from the exported schema, whose users may `.pick()` or
 * `.extend()` it (zod refuses to pick from a refined object schema).
 */
export const WireRunStateSchema = RunStateSchema.superRefine((state, ctx) => addJsonIssue(state, ctx, []));

/** Adds an issue where `value` stops being JSON data (see `json-data.ts`). */
function addJsonIssue(value: unknown, ctx: z.RefinementCtx, path: (string | number)[]): void {
  const problem = jsonDataProblem(value);
  if (problem !== undefined)
    ctx.addIssue({ code: "custom", path: [...path, ...problem.path], message: problem.reason });
}

/** A run's state (see {@link RunStateSchema}). */
export type RunState = z.infer<typeof RunStateSchema>;
/** A run event (see {@link RunEventSchema}). */
export type RunEvent = z.infer<typeof RunEventSchema>;

const envelopeBase = {
  runId: RunIdSchema,
  id: EnvelopeIdSchema.optional(),
};

/**
 * What a source announces and a client receives: an `event`, a progress `state`, or the
 * run's final `complete`. `data.run_id` (events) or `data.id` (states) must name `runId`;
 * a `state` envelope never carries a terminal status (a run ends with `complete`, whose
 * status is always terminal); `data` is JSON data throughout (no BigInt, cycle, function,
 * symbol, `NaN` or `Infinity`, `Map` or `Set`, or `toJSON` that throws).
 */
export const EnvelopeSchema = z
  .discriminatedUnion("type", [
    z.object({ type: z.literal("event"), ...envelopeBase, data: RunEventSchema }),
    z.object({ type: z.literal("state"), ...envelopeBase, data: RunStateSchema }),
    z.object({ type: z.literal("complete"), ...envelopeBase, data: RunStateSchema }),
  ])
  .superRefine((envelope, ctx) => {
    const named = envelope.type === "event" ? envelope.data.run_id : envelope.data.id;
    if (named !== envelope.runId) {
      ctx.addIssue({
        code: "custom",
        path: ["data", envelope.type === "event" ? "run_id" : "id"],
        message: `data names run ${JSON.stringify(named)} but the envelope is for run ${JSON.stringify(envelope.runId)}`,
      });
    }
    addJsonIssue(envelope.data, ctx, ["data"]);
    if (envelope.type === "state" && isTerminalStatus(envelope.data.status)) {
      ctx.addIssue({
        code: "custom",
        path: ["data", "status"],
        message: `a state envelope cannot carry the terminal status "${envelope.data.status}": announce a complete envelope`,
      });
    }
    if (envelope.type === "complete" && !isTerminalStatus(envelope.data.status)) {
      ctx.addIssue({
        code: "custom",
        path: ["data", "status"],
        message: `a complete envelope needs a terminal status, not "${envelope.data.status}"`,
      });
    }
  });

/**
 * An envelope (see {@link EnvelopeSchema}). `State` and `Event` are the host's own types of
 * run states and events, with its custom fields (e.g. `interface DeployState extends RunState
 * { units: string[] }`); by default the built-in {@link RunState} and {@link RunEvent}, whose
 * custom fields are `unknown`.
 */
export type Envelope<State extends RunState = RunState, Event extends RunEvent = RunEvent> =
  | { type: "event"; runId: string; id?: string | undefined; data: Event }
  | { type: "state"; runId: string; id?: string | undefined; data: State }
  | { type: "complete"; runId: string; id?: string | undefined; data: State };

/** The three envelope types. */
export type EnvelopeType = Envelope["type"];

/** A one-line summary of a zod error, for error messages. */
export function describeIssues(error: z.ZodError): string {
  return error.issues
    .map((issue) => (issue.path.length > 0 ? `${issue.path.join(".")}: ${issue.message}` : issue.message))
    .join("; ");
}
