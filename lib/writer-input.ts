/**
 * What a daemon hands the writer API (`createRun`, `recordEvent`, `updateRun`, `completeRun`)
 * and how it is checked, shared by `MemoryRunSource` and `RedisRunSource` so that both answer
 * the same input with the same error. The checks return the problem instead of throwing it:
 * the in-memory source throws at once, the Redis source first asks Redis whether the run is
 * active, since an unknown or finished run is reported before a bad input.
 */
import { RuncastError } from "./errors";
import { copyJsonData, describeJsonProblem } from "./json-data";
import {
  describeIssues,
  isTerminalStatus,
  isValidRunId,
  type RunEvent,
  RunEventSchema,
  type RunState,
  RunStateSchema,
} from "./schema";

import type { EventInput, RunCompletion, RunPatch } from "./writer-types";

export type { CustomStateFields, EventInput, RunCompletion, RunInit, RunPatch } from "./writer-types";

/** `invalid_run_id` for an id `createRun` cannot take. */
export function runIdProblem(id: unknown): RuncastError | undefined {
  if (isValidRunId(id)) return undefined;
  return new RuncastError(
    "invalid_run_id",
    `invalid run id ${JSON.stringify(id)}: use 1 to 128 characters of [A-Za-z0-9._:-]`,
  );
}

/**
 * A whole run state, validated; its status must be terminal exactly when `terminal` is.
 * Returned as a JSON copy (see {@link copyJsonData}), deeply frozen with `freeze`: a value
 * JSON cannot carry is refused, and what the source keeps shares nothing the daemon could
 * change afterwards.
 */
export function parseState(candidate: unknown, terminal: boolean, freeze = false): RunState | RuncastError {
  const parsed = RunStateSchema.safeParse(candidate);
  if (!parsed.success) return new RuncastError("invalid_state", `invalid run state: ${describeIssues(parsed.error)}`);
  if (isTerminalStatus(parsed.data.status) !== terminal) {
    return new RuncastError("invalid_state", `unexpected status "${parsed.data.status}"`);
  }
  const copied = copyJsonData(parsed.data, freeze);
  if ("reason" in copied) {
    return new RuncastError("invalid_state", `invalid run state: ${describeJsonProblem(copied, "state")}`);
  }
  return copied.value;
}

/**
 * An event recorded for `runId`, validated, with `run_id` and `ts` filled in when absent;
 * a JSON copy, like {@link parseState}'s.
 */
export function parseEvent(runId: string, event: EventInput, freeze = false): RunEvent | RuncastError {
  const parsed = RunEventSchema.safeParse({ ts: new Date().toISOString(), ...event, run_id: event?.run_id ?? runId });
  if (!parsed.success) {
    return new RuncastError("invalid_event", `invalid event for run ${runId}: ${describeIssues(parsed.error)}`);
  }
  if (parsed.data.run_id !== runId) {
    return new RuncastError("invalid_event", `event names run ${parsed.data.run_id} but was recorded for run ${runId}`);
  }
  const copied = copyJsonData(parsed.data, freeze);
  if ("reason" in copied) {
    return new RuncastError("invalid_event", `invalid event for run ${runId}: ${describeJsonProblem(copied, "event")}`);
  }
  return copied.value;
}

/** What `updateRun` refuses before merging: a patch that changes the id or sets a terminal status. */
export function patchProblem(runId: string, patch: RunPatch): RuncastError | undefined {
  if (patch !== null && typeof patch === "object" && "id" in patch && patch.id !== runId) {
    return new RuncastError("invalid_state", `updateRun cannot change a run's id`);
  }
  if (typeof patch?.status === "string" && isTerminalStatus(patch.status)) {
    return new RuncastError(
      "invalid_state",
      `updateRun cannot set the terminal status "${patch.status}": call completeRun`,
    );
  }
  return undefined;
}

/** Whether a patch has a `tags` field at all. */
export function touchesTags(patch: unknown): patch is { tags: unknown } {
  return patch !== null && typeof patch === "object" && "tags" in patch;
}

/** Whether two tag lists are the same list. */
function sameTags(a: readonly string[] | undefined, b: unknown): boolean {
  if (a === undefined || b === undefined) return a === b;
  return Array.isArray(b) && b.length === a.length && a.every((tag, i) => b[i] === tag);
}

/**
 * `tags_fixed` when `updateRun`/`completeRun` would change a run's tags: they are set by
 * `createRun` and stay for the run's life, so that what a scoped client may see never changes
 * under it. A patch that repeats the current tags (a whole state spread back in) is fine.
 * `current` is the run's stored tags (a source that must read them first can skip that
 * unless {@link touchesTags}).
 */
export function tagsProblem(
  runId: string,
  patch: RunPatch | RunCompletion,
  current: readonly string[] | undefined,
): RuncastError | undefined {
  if (!touchesTags(patch) || sameTags(current, patch.tags)) return undefined;
  return new RuncastError("tags_fixed", `the tags of run ${runId} are fixed at createRun and cannot change`);
}

/** What `completeRun` refuses before merging: a status that is not terminal. */
export function completionProblem(final: RunCompletion): RuncastError | undefined {
  if (typeof final?.status === "string" && isTerminalStatus(final.status)) return undefined;
  return new RuncastError(
    "invalid_state",
    `completeRun needs a terminal status (completed, failed or cancelled), got ${JSON.stringify(final?.status)}`,
  );
}

/** The value, or throws the problem found instead. */
export function orThrow<T>(checked: T | RuncastError): T {
  if (checked instanceof RuncastError) throw checked;
  return checked;
}
