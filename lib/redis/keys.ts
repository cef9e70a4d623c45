/**
 * The names of a deployment's keys. Every key of one run carries the run's hash tag
 * (`{<run id>}`), so the run lives in one Redis Cluster slot; the global keys carry none.
 */
export interface RedisKeys {
  /** The global feed: every run's envelopes, trimmed to `historySize`. */
  readonly feed: string;
  /** Id of the first entry the global feed ever got (gone with the data). */
  readonly origin: string;
  /** Active run ids, scored in creation order. */
  readonly active: string;
  /** Finished run ids, scored in finishing order. */
  readonly finished: string;
  /** The counter that scores both sets. */
  readonly order: string;
  /** Prefix of the run hashes, closed by `}`: `<base>:run:{`. */
  readonly runPrefix: string;
  /** Prefix of the run logs, closed by `}`: `<base>:log:{`. */
  readonly runLogPrefix: string;
  /** One run's state hash. */
  run(runId: string): string;
  /** One run's log (stream). */
  runLog(runId: string): string;
  /** One write's outcome, under its run's hash tag. */
  write(runId: string, writeId: string): string;
}

/** The keys under `base` (the client's `keyPrefix`, then the source's `prefix`). */
export function redisKeys(base: string): RedisKeys {
  const runPrefix = `${base}:run:{`;
  const runLogPrefix = `${base}:log:{`;
  return {
    feed: `${base}:log`,
    origin: `${base}:origin`,
    active: `${base}:active`,
    finished: `${base}:finished`,
    order: `${base}:order`,
    runPrefix,
    runLogPrefix,
    run: (runId) => `${runPrefix}${runId}}`,
    runLog: (runId) => `${runLogPrefix}${runId}}`,
    write: (runId, writeId) => `${base}:write:{${runId}}:${writeId}`,
  };
}
