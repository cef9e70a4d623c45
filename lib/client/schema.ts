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

import { en as english } from "zod/locales";
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

/** A run's state, as `state` and `complete` frames carry it; extra fields pass through. */
export const RunStateSchema = z.looseObject({
  id: runId,
  status: z.enum(RUN_STATUSES),
  completed_units: units,
  total_units: z.optional(units),
});

/** A run event, as `event` frames carry it; extra fields pass through. */
export const RunEventSchema = z.looseObject({
  type: z.string().check(z.regex(EVENT_TYPE_PATTERN, "an event type is a dotted lowercase name such as unit.started")),
  run_id: runId,
  unit: z.optional(z.string().check(z.minLength(1), z.maxLength(256))),
  ts: z.iso.datetime({ offset: true }),
});

/**
 * English messages for this client's parses only: `zod/mini` ships without them, and setting
 * them globally (`z.config`) would change the messages of a page's own schemas.
 */
const messages = { error: english().localeError };

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
