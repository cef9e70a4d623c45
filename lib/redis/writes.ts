/** What `RedisRunSource`'s writes need besides Redis: errors, hash fields, merge checks, closing a connection. */
import type { Redis } from "ioredis";
import { RuncastError } from "../errors";
import { parseState } from "../writer-input";

export function notFound(runId: unknown): RuncastError {
  return new RuncastError("run_not_found", `run ${JSON.stringify(runId)} does not exist`);
}

/**
 * A state's top-level fields as hash fields: name and value both JSON. A field set to
 * `undefined` is deleted, as `JSON.stringify` would leave it out (values JSON cannot carry
 * were refused before, by the writer input checks).
 */
export function fieldArgs(fields: Record<string, unknown>, skipId: boolean): string[] {
  const set: string[] = [];
  const unset: string[] = [];
  for (const [name, value] of Object.entries(fields)) {
    if (skipId && name === "id") continue;
    const json = JSON.stringify(value) as string | undefined;
    if (json === undefined) unset.push(JSON.stringify(name));
    else set.push(JSON.stringify(name), json);
  }
  return [String(set.length / 2), ...set, ...unset];
}

/** The merged state a patch would give, checked field by field against the schema. */
export function checkMerge(
  runId: string,
  fields: Record<string, unknown>,
  status: string,
  terminal: boolean,
): RuncastError | undefined {
  // Every schema rule is about one field, and the stored state already passed them, so the
  // patch over valid placeholders fails exactly when the real merge would.
  const merged = parseState({ status, completed_units: 0, ...fields, id: runId }, terminal);
  return merged instanceof RuncastError ? merged : undefined;
}

export function finished(runId: string, status: string): RuncastError {
  return new RuncastError("run_finished", `run ${runId} is already ${status}`);
}

/** Closes one of our connections and resolves once it is gone. */
export function release(connection: Redis, graceful: boolean): Promise<void> {
  if (connection.status === "end") return Promise.resolve();
  return new Promise((resolve) => {
    connection.once("end", () => resolve());
    if (graceful) {
      connection.quit().catch(() => connection.disconnect());
    } else {
      connection.disconnect();
      // Between attempts there is no socket to close, so no "end" would follow.
      if (connection.status === "reconnecting" || connection.status === "wait") resolve();
    }
  });
}
