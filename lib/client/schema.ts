/**
 * The client's validation of frame data: the same rules as runcast's `RunStateSchema` and
 * `RunEventSchema` in lib/schema.ts (a property test checks that both accept and refuse the
 * same values with the same messages: a rule added there must be added here), written with
 * zod's small build, `zod/mini`, so the browser bundle stays small. The main schemas use
 * zod's chained-method API, whose classes carry every method whether used or not.
 *
 * Browser-safe: imports `zod/mini` and its English messages, nothing else.
 *
 * @packageDocumentation
 */

import * as z from "zod/mini";
import type { RunEvent, RunState, RunStatus, TerminalStatus } from "../schema";

/** Run ids: 1 to 128 characters of `[A-Za-z0-9._:-]` (as `RUN_ID_PATTERN` in runcast). */
const RUN_ID_PATTERN = /^[A-Za-z0-9._:-]{1,128}$/;
/** Event types: dotted lowercase names such as `unit.started` (as `EVENT_TYPE_PATTERN` in runcast). */
const EVENT_TYPE_PATTERN = /^(?=.{1,128}$)[a-z][a-z0-9_-]*(?:\.[a-z][a-z0-9_-]*)*$/;
const RUN_STATUSES = ["pending", "running", "completed", "failed", "cancelled"] as const satisfies readonly RunStatus[];

/** Whether `status` ends a run. */
export function isTerminalStatus(status: string): status is TerminalStatus {
  return status === "completed" || status === "failed" || status === "cancelled";
}

const runId = z.string().check(z.regex(RUN_ID_PATTERN, "a run id is 1 to 128 characters of [A-Za-z0-9._:-]"));
const units = z.int().check(z.nonnegative());
/** Run tags (as `TAG_PATTERN` and `MAX_RUN_TAGS` in runcast). */
const tag = z.string().check(z.regex(RUN_ID_PATTERN, "a tag is 1 to 128 characters of [A-Za-z0-9._:-]"));

/** A run's state, as `state` and `complete` frames carry it; extra fields pass through. */
export const RunStateSchema = z.looseObject({
  id: runId,
  status: z.enum(RUN_STATUSES),
  completed_units: units,
  total_units: z.optional(units),
  tags: z.optional(z.array(tag).check(z.maxLength(32, "a run carries at most 32 tags"))),
});

/** A run event, as `event` frames carry it; extra fields pass through. */
export const RunEventSchema = z.looseObject({
  type: z.string().check(z.regex(EVENT_TYPE_PATTERN, "an event type is a dotted lowercase name such as unit.started")),
  run_id: runId,
  unit: z.optional(z.string().check(z.minLength(1), z.maxLength(256))),
  ts: z.iso.datetime({ offset: true }),
});

/** What a size check counts, by the kind of value it checks. */
const UNITS: Record<string, string> = { string: "characters", array: "items" };

/** A type name as zod's English messages spell it. */
function typeName(type: string, input?: unknown): string {
  if (type === "number" && typeof input === "number" && !Number.isFinite(input)) return String(input);
  return type === "nan" ? "NaN" : type;
}

/** The kind of a value as zod names it in messages (`nan`, `null`, `array`, a class name, or its `typeof`). */
function kindOf(data: unknown): string {
  if (typeof data === "number") return Number.isNaN(data) ? "nan" : "number";
  if (typeof data !== "object") return typeof data;
  if (data === null) return "null";
  if (Array.isArray(data)) return "array";
  const named =
    Object.getPrototypeOf(data) !== Object.prototype && "constructor" in data ? data.constructor : undefined;
  return typeof named === "function" && named.name !== "" ? named.name : "object";
}

/** A value as zod quotes it in messages. */
function quoted(value: unknown): string {
  return typeof value === "string" ? `"${value}"` : typeof value === "bigint" ? `${value}n` : String(value);
}

/**
 * zod's English messages for the issues these schemas can raise, word for word (the property
 * test holds them to the server's), and nothing more: `zod/mini` ships without messages, and
 * zod's whole English locale, most of it for checks this client never makes, would take it
 * past its size budget. Passed to each parse rather than set globally (`z.config`), which would
 * change the messages of a page's own schemas.
 */
function englishError(issue: z.core.$ZodRawIssue): string {
  const i = issue as z.core.$ZodRawIssue & Record<string, unknown>;
  switch (issue.code) {
    case "invalid_type":
      return `Invalid input: expected ${typeName(String(i.expected))}, received ${typeName(kindOf(i.input), i.input)}`;
    case "invalid_value": {
      const values = i.values as unknown[];
      return values.length === 1
        ? `Invalid input: expected ${quoted(values[0])}`
        : `Invalid option: expected one of ${values.map(quoted).join("|")}`;
    }
    case "too_big":
    case "too_small": {
      const big = issue.code === "too_big";
      const adj = i.exact ? "exactly " : `${big ? "<" : ">"}${i.inclusive ? "=" : ""}`;
      const origin = String(i.origin ?? "value");
      const unit = UNITS[origin];
      const bound = String(big ? i.maximum : i.minimum);
      return `Too ${big ? "big" : "small"}: expected ${origin} to ${unit ? `have ${adj}${bound} ${unit}` : `be ${adj}${bound}`}`;
    }
    case "invalid_format":
      return i.format === "regex"
        ? `Invalid string: must match pattern ${String(i.pattern)}`
        : `Invalid ${i.format === "datetime" ? "ISO datetime" : String(i.format)}`;
    default:
      return "Invalid input";
  }
}

const messages = { error: englishError };

/** The outcome of validating one frame's data: the value, or a one-line reason. */
export type Checked<T> = { ok: true; value: T } | { ok: false; why: string };

function check<T>(schema: z.ZodMiniType, data: unknown): Checked<T> {
  const result = z.safeParse(schema, data, messages);
  if (result.success) return { ok: true, value: result.data as T };
  const why = result.error.issues
    .map((issue) => (issue.path.length > 0 ? `${issue.path.join(".")}: ${issue.message}` : issue.message))
    .join("; ");
  return { ok: false, why };
}

/** Validates a run state. */
export function checkRunState(data: unknown): Checked<RunState> {
  return check<RunState>(RunStateSchema, data);
}

/** Validates a run event. */
export function checkRunEvent(data: unknown): Checked<RunEvent> {
  return check<RunEvent>(RunEventSchema, data);
}
