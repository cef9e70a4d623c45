import { randomUUID } from "node:crypto";
import { Redis } from "ioredis";
import { RuncastError } from "../errors";
import { positiveInteger } from "../options";
import { type Envelope, isValidRunId, type RunEvent, type RunState } from "../schema";
import {
  compareEnvelopeIds,
  type LiveGap,
  type LogGap,
  type LogPage,
  type LogQuery,
  type RunEventSource,
  type RunSnapshot,
  type SourceLag,
} from "../source";
import {
  completionProblem,
  type EventInput,
  parseEvent,
  parseState,
  patchProblem,
  type RunCompletion,
  type RunInit,
  type RunPatch,
  runIdProblem,
  tagsProblem,
  touchesTags,
} from "../writer-input";
import { AnswerWatch, type ConnectionRole } from "./answer-watch";
import { type RedisKeys, redisKeys } from "./keys";
import { feedLoss, gapReason } from "./log-gaps";
import {
  DEFAULT_BLOCK_MS,
  DEFAULT_READ_COUNT,
  DEFAULT_REDIS_HISTORY_SIZE,
  DEFAULT_REDIS_MAX_FINISHED_RUNS,
  DEFAULT_REDIS_MAX_RUN_LOG_SIZE,
  DEFAULT_REDIS_PREFIX,
  DEFAULT_REDIS_URL,
  DEFAULT_RESEND_WINDOW_MS,
  DEFAULT_UNRESPONSIVE_MS,
  type RedisErrorContext,
  type RedisRunSourceOptions,
} from "./options";
import { entriesOf, type FeedStatus, feedStatusOf, isStringArray, logReply, type StreamEntry } from "./replies";
import { installScripts, type ScriptName, type ScriptRunner } from "./scripts";
import { isCanonicalStreamId } from "./stream-ids";
import { checkMerge, fieldArgs, finished, notFound, release } from "./writes";

export { RuncastError, type RuncastErrorCode } from "../errors";
export type { CustomStateFields, EventInput, RunCompletion, RunInit, RunPatch } from "../writer-input";

export * from "./options";

/** Pause before the live reader tries again after a failed read, in ms. */
const READ_RETRY_MS = 1_000;
/** Envelopes per read when `replay` gathers a whole resume. */
const REPLAY_PAGE = 1_000;
/** Valid key prefixes: printable ASCII without spaces or braces (a brace would change the runs' hash tags). */
const PREFIX_PATTERN = /^[\x21-\x7a\x7c\x7e]{1,128}$/;

/** One run's status, as a write that fails validation needs it to report the right error. */
type RunCondition = { kind: "missing" } | { kind: "active" } | { kind: "finished"; status: string };

/**
 * The event source on Redis, for several processes serving the same runs: the same writer
 * API as `MemoryRunSource` (asynchronous) and the {@link RunEventSource} reader side.
 *
 * Each envelope goes to the global feed (a stream of every run's envelopes; its entry ids are
 * the envelope ids) and, under the same id, to its run's log (a stream per run); run states
 * go to one hash per run. Every key of a run shares the run's hash tag. Each write is a
 * single Lua script, atomic and safe to send twice. Each process holds two connections
 * whatever its number of SSE clients: one for commands, opened at once, and one for the
 * blocking live reader, opened by the first `subscribe`. Both reconnect by themselves; the
 * reader then reads on after the last envelope it delivered.
 *
 * Requires Redis 6.2 or later, standalone or behind Sentinel. Not Redis Cluster: a write
 * touches the global feed and sets as well as its run's keys (several slots), and
 * `completeRun` deletes forgotten runs' keys it derives from their ids.
 *
 * `State` and `Event` are the host's own types of run states and events, as with
 * `MemoryRunSource`: `new RedisRunSource<DeployState>(options)` types the writer calls and
 * what the reader side gives. They are taken on trust (the checks cover the built-in fields),
 * so every process writing and reading the same runs should use the same types.
 */
export class RedisRunSource<State extends RunState = RunState, Event extends RunEvent = RunEvent>
  implements RunEventSource<State, Event>
{
  /** The key prefix in use. */
  readonly prefix: string;
  readonly #commands: Redis;
  readonly #scripts: Record<ScriptName, ScriptRunner>;
  readonly #base: Redis;
  /** Whether our connections get names (`<prefix>:commands`, `<prefix>:reader`, handy in CLIENT LIST): unless the caller named theirs. */
  readonly #named: boolean;
  #reader: Redis | undefined;
  readonly #keys: RedisKeys;
  readonly #historySize: number;
  readonly #maxRunLogSize: number;
  readonly #maxFinishedRuns: number;
  readonly #finishedRunTtlMs: number | undefined;
  readonly #resendWindowMs: number;
  readonly #readCount: number;
  readonly #blockMs: number;
  readonly #onError: (error: Error, context: RedisErrorContext) => void;
  /** Subscribers, each with its `onGap` when it gave one. */
  readonly #listeners = new Map<(envelope: Envelope<State, Event>) => void, ((gap: LiveGap) => void) | undefined>();
  /** Bumped when reading starts or stops, so a read loop of an earlier subscription ends. */
  #generation = 0;
  /** Where the current read loop starts: the feed's last id (and origin) when the first listener came. */
  #start: { generation: number; id: Promise<string> } | undefined;
  /** The id the live reader reads after: its start, then the last entry it took. */
  #position: string | undefined;
  /** Whether the reader's last read returned a full batch (or failed): it may be behind the feed. */
  #behind = true;
  /** The feed's origin as the reader last saw it ("" when the feed did not exist yet). */
  #origin = "";
  /** Times the reader's connection dropped, and how many of those the feed was checked after. */
  #interruptions = 0;
  #checkedThrough = 0;
  readonly #timers = new Set<{ timer: NodeJS.Timeout; wake: () => void }>();
  /** Commands not answered yet, rejected by `close()` when their connection is down. */
  readonly #inFlight = new Set<(error: Error) => void>();
  readonly #answers: AnswerWatch;
  #closing: Promise<void> | undefined;

  /**
   * Connects to Redis (the command connection opens at once; see the options for defaults).
   * Options are checked now, throwing `invalid_option`.
   */
  constructor(options: RedisRunSourceOptions = {}) {
    if (options.redis !== undefined && options.url !== undefined) {
      throw new RuncastError("invalid_option", "give either url or redis, not both");
    }
    const prefix = options.prefix ?? DEFAULT_REDIS_PREFIX;
    if (typeof prefix !== "string" || !PREFIX_PATTERN.test(prefix)) {
      throw new RuncastError(
        "invalid_option",
        `prefix must be 1 to 128 printable characters without spaces or braces, got ${JSON.stringify(prefix)}`,
      );
    }
    if (options.onError !== undefined && typeof options.onError !== "function") {
      throw new RuncastError("invalid_option", "onError must be a function");
    }
    this.prefix = prefix;
    this.#historySize = positiveInteger("historySize", options.historySize, DEFAULT_REDIS_HISTORY_SIZE);
    this.#maxRunLogSize = positiveInteger("maxRunLogSize", options.maxRunLogSize, DEFAULT_REDIS_MAX_RUN_LOG_SIZE);
    this.#maxFinishedRuns = positiveInteger(
      "maxFinishedRuns",
      options.maxFinishedRuns,
      DEFAULT_REDIS_MAX_FINISHED_RUNS,
    );
    this.#finishedRunTtlMs =
      options.finishedRunTtlMs === undefined
        ? undefined
        : positiveInteger("finishedRunTtlMs", options.finishedRunTtlMs, 0);
    this.#resendWindowMs = positiveInteger("resendWindowMs", options.resendWindowMs, DEFAULT_RESEND_WINDOW_MS);
    this.#readCount = positiveInteger("readCount", options.readCount, DEFAULT_READ_COUNT);
    this.#blockMs = positiveInteger("blockMs", options.blockMs, DEFAULT_BLOCK_MS);
    const unresponsiveMs = positiveInteger("unresponsiveMs", options.unresponsiveMs, DEFAULT_UNRESPONSIVE_MS);
    this.#onError =
      options.onError ?? ((error, context) => process.emitWarning(`runcast: ${error.message} (${context.phase})`));
    // A caller's client may prefix its keys (ioredis `keyPrefix`): ours go under that prefix
    // too, applied here rather than by ioredis, which would miss the keys the scripts derive.
    const keyPrefix = options.redis?.options.keyPrefix ?? "";
    this.#keys = redisKeys(`${keyPrefix}${prefix}`);
    // RESP2 on our own connections, so replies (XREAD above all) have one shape whatever the
    // caller's client negotiates.
    const settings = { protocol: 2, replyMapping: "legacy", keyPrefix: "" } as const;
    this.#named = !options.redis?.options.connectionName;
    if (options.redis !== undefined) {
      this.#base = options.redis;
      this.#commands = options.redis.duplicate({ ...settings, ...this.#name("commands") });
    } else {
      if (options.url !== undefined && typeof options.url !== "string") {
        throw new RuncastError("invalid_option", "url must be a string");
      }
      this.#commands = new Redis(options.url ?? DEFAULT_REDIS_URL, { ...settings, ...this.#name("commands") });
      this.#base = this.#commands;
    }
    this.#answers = new AnswerWatch({
      limitMs: unresponsiveMs,
      isReady: (role) => (role === "commands" ? this.#commands : this.#reader)?.status === "ready",
      report: (role, waitedMs, what) => this.#reportSilence(role, waitedMs, what),
    });
    this.#scripts = installScripts(this.#commands);
    this.#watch(this.#commands, "commands");
  }

  // ---- writer side -------------------------------------------------------------------

  /** Creates a run (status `pending` unless given) and announces its first `state` envelope. */
  async createRun(init: RunInit<State>): Promise<State> {
    this.#assertOpen();
    const badId = runIdProblem(init?.id);
    if (badId !== undefined) throw badId;
    const runId = init.id;
    const state = parseState({ status: "pending", completed_units: 0, ...init }, false);
    if (state instanceof RuncastError) {
      // As in MemoryRunSource, an existing run is reported before a bad state.
      if ((await this.#condition(runId)).kind !== "missing") {
        throw new RuncastError("run_exists", `run ${runId} already exists`);
      }
      throw state;
    }
    const { data } = await this.#write(
      "createRun",
      runId,
      [this.#keys.active, this.#keys.order, this.#keys.finished],
      fieldArgs(state, false),
    );
    return this.#parseJson(data) as State;
  }

  /** Records an event of an active run (`run_id` and `ts` filled in when absent) and announces it. */
  async recordEvent(runId: string, event: EventInput<Event>): Promise<Envelope<State, Event>> {
    this.#assertOpen();
    if (!isValidRunId(runId)) throw notFound(runId);
    const parsed = parseEvent(runId, event as EventInput);
    if (parsed instanceof RuncastError) return this.#failUnlessActive(runId, parsed);
    const json = JSON.stringify(parsed);
    const { id } = await this.#write("recordEvent", runId, [], [json]);
    return { type: "event", runId, id, data: this.#parseJson(json) as Event };
  }

  /** Merges `patch` into an active run's state and announces the new `state`. */
  async updateRun(runId: string, patch: RunPatch<State>): Promise<State> {
    this.#assertOpen();
    if (!isValidRunId(runId)) throw notFound(runId);
    const fields: Record<string, unknown> = { ...patch };
    const problem =
      patchProblem(runId, patch as RunPatch) ??
      (await this.#tagsProblem(runId, patch as RunPatch)) ??
      checkMerge(runId, fields, "pending", false);
    if (problem !== undefined) return this.#failUnlessActive(runId, problem);
    const { data } = await this.#write("updateRun", runId, [], fieldArgs(fields, true));
    return this.#parseJson(data) as State;
  }

  /** Ends an active run with a terminal status and announces its `complete` envelope. */
  async completeRun(runId: string, final: RunCompletion<State>): Promise<Envelope<State, Event>> {
    this.#assertOpen();
    if (!isValidRunId(runId)) throw notFound(runId);
    const fields: Record<string, unknown> = { ...final };
    const problem =
      completionProblem(final as RunCompletion) ??
      (await this.#tagsProblem(runId, final as RunCompletion)) ??
      checkMerge(runId, fields, final.status, true);
    if (problem !== undefined) return this.#failUnlessActive(runId, problem);
    const { id, data } = await this.#write(
      "completeRun",
      runId,
      [this.#keys.active, this.#keys.order, this.#keys.finished],
      [
        this.#maxFinishedRuns,
        this.#keys.runPrefix,
        this.#keys.runLogPrefix,
        this.#finishedRunTtlMs ?? 0,
        ...fieldArgs(fields, true),
      ],
    );
    return { type: "complete", runId, id, data: this.#parseJson(data) as State };
  }

  // ---- reader side (RunEventSource) -----------------------------------------------------

  /** The run's current state (terminal once it finished), or `undefined` when unknown or forgotten. */
  async getRun(runId: string): Promise<State | undefined> {
    if (!isValidRunId(runId)) return undefined;
    const json = await this.#command("HGET", this.#commands.hget(this.#keys.run(runId), "state"));
    return json === null ? undefined : (this.#parseJson(json) as State);
  }

  /** The active runs, in creation order. */
  async listRuns(): Promise<State[]> {
    return (await this.snapshot()).states;
  }

  /**
   * States and their cursor read in one script: every active run's with the global feed's
   * newest id, or one run's with the id of its log's newest envelope.
   */
  async snapshot(): Promise<RunSnapshot<State>>;
  async snapshot(runId: string): Promise<RunSnapshot<State> | undefined>;
  async snapshot(runId?: string): Promise<RunSnapshot<State> | undefined> {
    if (runId !== undefined && !isValidRunId(runId)) return undefined;
    await this.#readerStarted();
    if (runId !== undefined) {
      const reply = await this.#command(
        "the snapshot script",
        this.#scripts.snapshotRun([this.#keys.run(runId), this.#keys.runLog(runId)], []),
      );
      if (reply === null) return undefined;
      if (!isStringArray(reply) || reply.length !== 2) throw new Error("runcast/redis: unexpected snapshot reply");
      const [state, cursor] = reply as [string, string];
      return { states: [this.#parseJson(state) as State], cursor: cursor === "" ? undefined : cursor };
    }
    const reply = await this.#command(
      "the snapshot script",
      this.#scripts.snapshotAll([this.#keys.feed, this.#keys.active], [this.#keys.runPrefix]),
    );
    if (!isStringArray(reply) || reply.length === 0) throw new Error("runcast/redis: unexpected snapshot reply");
    const [cursor, ...states] = reply;
    return {
      states: states.map((json) => this.#parseJson(json) as State),
      cursor: cursor === "" || cursor === undefined ? undefined : cursor,
    };
  }

  /** A finished run's `complete` envelope, id included; `undefined` while it is active or when unknown. */
  async getCompletion(runId: string): Promise<Envelope<State, Event> | undefined> {
    if (!isValidRunId(runId)) return undefined;
    const [state, id] = await this.#command("HMGET", this.#commands.hmget(this.#keys.run(runId), "state", "complete"));
    if (state == null || id == null) return undefined;
    return { type: "complete", runId, id, data: this.#parseJson(state) as State };
  }

  /**
   * A page of one run's log (read in one script over that run's two keys, never the global
   * feed or another run's log) or of the global feed. From the start, a run's log is served
   * while it still begins with the run's first envelope; after an id, when that id is an entry
   * of the log. Otherwise `{ gap: "trimmed" }` when the id (canonical, of this feed) lies
   * between the run's first envelope (for the feed: its first entry ever) and the oldest
   * entry kept, `{ gap: "unknown_id" }` for anything else. `undefined` for an unknown or
   * forgotten run. The global feed read without `after` starts at its oldest entry kept.
   */
  async readLog(query: LogQuery): Promise<LogPage<State, Event> | LogGap | undefined> {
    const { runId, after, limit } = query;
    if (!Number.isSafeInteger(limit) || limit < 1) {
      throw new RangeError(`readLog: limit must be a positive integer, got ${String(limit)}`);
    }
    if (runId !== undefined && !isValidRunId(runId)) return undefined;
    if (after !== undefined && !isCanonicalStreamId(after)) {
      if (runId === undefined) return { gap: "unknown_id" };
      const known = await this.#command("EXISTS", this.#commands.exists(this.#keys.run(runId)));
      return known === 1 ? { gap: "unknown_id" } : undefined;
    }
    await this.#readerStarted();
    const envelopes: Envelope<State, Event>[] = [];
    let from = after;
    // Pages are read until full or short: an unreadable entry is skipped (and reported)
    // without making the page look like the end of the log.
    for (;;) {
      const want = limit - envelopes.length;
      const reply = await this.#command("the log script", this.#readLogScript(runId, from, want));
      if (reply === null) return undefined;
      const page = logReply(reply);
      if (page.kind === "gap") {
        if (envelopes.length > 0) return { envelopes };
        return { gap: gapReason(runId === undefined, from, page.low, page.oldest) };
      }
      for (const entry of page.entries) {
        const envelope = this.#envelopeOf(entry, runId);
        if (envelope !== undefined) envelopes.push(envelope);
      }
      const last = page.entries.at(-1);
      if (page.entries.length < want || envelopes.length >= limit || last === undefined) return { envelopes };
      from = last[0];
    }
  }

  /**
   * The envelopes after `afterId`, oldest first (of one run when `runId` is given), read from
   * the logs page by page; `null` when `readLog` cannot serve that position exactly.
   */
  async replay(afterId: string, runId?: string): Promise<Envelope<State, Event>[] | null> {
    if (typeof afterId !== "string") return null;
    const out: Envelope<State, Event>[] = [];
    let after = afterId;
    for (;;) {
      const page = await this.readLog({ runId, after, limit: REPLAY_PAGE });
      if (page === undefined || "gap" in page) return null;
      out.push(...page.envelopes);
      const last = page.envelopes.at(-1);
      if (page.envelopes.length < REPLAY_PAGE || last?.id === undefined) return out;
      after = last.id;
    }
  }

  /**
   * Delivers every envelope recorded from now on, by any process, in id order. The first
   * subscriber opens the reader connection and starts a blocking `XREAD` loop on the global
   * feed after its last id at that moment (not `$`, which would skip what is written before
   * the first read arrives); snapshots and log reads wait until that point is known, so their
   * cursors never precede it. After an outage of the reader, `onGap` is told when the feed
   * was trimmed past where it read (`trimmed`) or Redis lost its data (`history_lost`).
   */
  subscribe(listener: (envelope: Envelope<State, Event>) => void, onGap?: (gap: LiveGap) => void): () => void {
    this.#assertOpen();
    this.#listeners.set(listener, onGap);
    if (this.#listeners.size === 1) this.#startReading();
    return () => {
      if (this.#listeners.delete(listener) && this.#listeners.size === 0) {
        // The loop ends when its pending XREAD returns (within blockMs).
        this.#generation++;
        this.#start = undefined;
      }
    };
  }

  /** Orders envelope ids (Redis stream ids) numerically. */
  compareIds(a: string, b: string): number {
    return compareEnvelopeIds(a, b);
  }

  /**
   * Closes the source's connections (never the client given as `redis`): gracefully when
   * connected, so commands already sent get their answer; commands still waiting for a lost
   * connection are rejected. Later writes and subscriptions throw `unavailable`.
   */
  close(): Promise<void> {
    if (this.#closing !== undefined) return this.#closing;
    this.#generation++;
    this.#listeners.clear();
    this.#answers.stop();
    for (const { timer, wake } of this.#timers) {
      clearTimeout(timer);
      wake();
    }
    this.#timers.clear();
    const reader = this.#reader;
    const commandsReady = this.#commands.status === "ready";
    this.#closing = Promise.all([
      reader === undefined ? undefined : release(reader, false),
      release(this.#commands, commandsReady),
    ]).then(() => {
      const error = new RuncastError("unavailable", "the RedisRunSource was closed before Redis answered");
      for (const reject of this.#inFlight) reject(error);
      this.#inFlight.clear();
    });
    return this.#closing;
  }

  // ---- internals --------------------------------------------------------------------------

  #assertOpen(): void {
    if (this.#closing !== undefined) throw new RuncastError("unavailable", "the RedisRunSource is closed");
  }

  #name(role: ConnectionRole): { connectionName?: string } {
    return this.#named ? { connectionName: `${this.prefix}:${role}` } : {};
  }

  #report(error: Error, context: RedisErrorContext): void {
    try {
      this.#onError(error, context);
    } catch {
      // A throwing onError must not stop the reader.
    }
  }

  #reportSilence(role: ConnectionRole, waitedMs: number, what: string): void {
    if (this.#closing !== undefined) return;
    const next =
      role === "commands"
        ? "writes and reads wait for its answers"
        : "live envelopes are not delivered meanwhile, and will be once it answers";
    this.#report(
      new Error(
        `runcast/redis: Redis has not answered the ${role} connection for ${waitedMs} ms (waiting for ${what}); it may be paused, stuck or unreachable; ${next}`,
      ),
      { phase: "connection", connection: role },
    );
  }

  /** Reports a connection's trouble once per outage, saying what happens next. */
  #watch(connection: Redis, role: ConnectionRole): void {
    let reported = false;
    const next =
      role === "commands"
        ? "reconnecting; writes wait for it and are sent again, recorded once"
        : "reconnecting, then reading on after the last envelope delivered, so nothing is lost or repeated";
    connection.on("ready", () => {
      this.#answers.ready(role);
      reported = false;
    });
    if (role === "reader") {
      const interrupted = (): void => {
        this.#interruptions++;
      };
      connection.on("close", interrupted);
      connection.on("error", interrupted);
    }
    connection.on("error", (error: Error) => {
      if (reported || this.#closing !== undefined) return;
      reported = true;
      this.#report(
        new Error(`runcast/redis: the ${role} connection to Redis failed (${error.message}); ${next}`, {
          cause: error,
        }),
        { phase: "connection", connection: role },
      );
    });
    connection.on("close", () => {
      if (reported || this.#closing !== undefined) return;
      reported = true;
      const where = role === "reader" && this.#position !== undefined ? ` (reading after ${this.#position})` : "";
      this.#report(new Error(`runcast/redis: lost the ${role} connection to Redis${where}; ${next}`), {
        phase: "connection",
        connection: role,
      });
    });
  }

  /** A command on the command connection: timed for silence, and rejected by `close()` if its connection is gone. */
  #command<T>(what: string, promise: Promise<T>): Promise<T> {
    return this.#tracked(this.#answers.watch("commands", what, promise));
  }

  /** Runs a write script with a fresh write id; maps refusals to the errors MemoryRunSource throws. */
  async #write(
    script: ScriptName,
    runId: string,
    extraKeys: string[],
    args: (string | number)[],
  ): Promise<{ id: string; data: string }> {
    const keys = [
      this.#keys.feed,
      this.#keys.origin,
      this.#keys.run(runId),
      this.#keys.runLog(runId),
      this.#keys.write(runId, randomUUID()),
      ...extraKeys,
    ];
    const reply = await this.#command(
      `the ${script} script`,
      this.#scripts[script](keys, [this.#resendWindowMs, this.#historySize, this.#maxRunLogSize, runId, ...args]),
    );
    if (!isStringArray(reply) || reply.length !== 3) throw new Error("runcast/redis: unexpected write reply");
    const [outcome, first, second] = reply as [string, string, string];
    if (outcome === "ok") return { id: first, data: second };
    if (first === "run_exists") throw new RuncastError("run_exists", `run ${runId} already exists`);
    if (first === "run_finished") throw finished(runId, second === "" ? "finished" : String(JSON.parse(second)));
    if (first === "run_not_found") throw notFound(runId);
    throw new RuncastError("internal_error", `runcast/redis: unexpected refusal ${first}`);
  }

  /** Lets `close()` reject a command whose connection is gone rather than leave it pending forever. */
  #tracked<T>(promise: Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.#inFlight.add(reject);
      promise.then(resolve, reject).finally(() => this.#inFlight.delete(reject));
    });
  }

  /** A write that failed validation: reports the run being unknown or finished first, as MemoryRunSource does. */
  /** `tags_fixed` when a patch would change the run's tags (fixed for its life, so read without a race). */
  async #tagsProblem(runId: string, patch: RunPatch | RunCompletion): Promise<RuncastError | undefined> {
    if (!touchesTags(patch)) return undefined;
    return tagsProblem(runId, patch, (await this.getRun(runId))?.tags);
  }

  async #failUnlessActive(runId: string, problem: RuncastError): Promise<never> {
    const condition = await this.#condition(runId);
    if (condition.kind === "missing") throw notFound(runId);
    if (condition.kind === "finished") throw finished(runId, condition.status);
    throw problem;
  }

  async #condition(runId: string): Promise<RunCondition> {
    const [status, complete] = await this.#command(
      "HMGET",
      this.#commands.hmget(this.#keys.run(runId), '"status"', "complete"),
    );
    if (status == null) return { kind: "missing" };
    if (complete == null) return { kind: "active" };
    return { kind: "finished", status: String(JSON.parse(status)) };
  }

  #readLogScript(runId: string | undefined, after: string | undefined, limit: number): Promise<unknown> {
    const args = [after ?? "", limit];
    return runId === undefined
      ? this.#scripts.readFeed([this.#keys.feed, this.#keys.origin], args)
      : this.#scripts.readRunLog([this.#keys.run(runId), this.#keys.runLog(runId)], args);
  }

  #parseJson(json: string): unknown {
    return JSON.parse(json);
  }

  /** An entry of the global feed (fields `t`, `r`, `d`) or of run `runId`'s log (`t`, `d`) as an envelope. */
  #envelopeOf([id, fields]: StreamEntry, runId?: string): Envelope<State, Event> | undefined {
    let type: string | undefined;
    let entryRunId = runId;
    let data: string | undefined;
    for (let i = 0; i + 1 < fields.length; i += 2) {
      const value = fields[i + 1];
      if (fields[i] === "t") type = value;
      else if (fields[i] === "r") entryRunId = value;
      else if (fields[i] === "d") data = value;
    }
    if (
      (type === "event" || type === "state" || type === "complete") &&
      entryRunId !== undefined &&
      data !== undefined
    ) {
      try {
        // The router validates every envelope; here it only needs the right shape.
        return { type, runId: entryRunId, id, data: JSON.parse(data) } as Envelope<State, Event>;
      } catch {
        // Reported below.
      }
    }
    const where = runId === undefined ? "the feed" : `the log of run ${runId}`;
    this.#report(new Error(`runcast/redis: entry ${id} of ${where} is not an envelope; skipped`), {
      phase: "entry",
    });
    return undefined;
  }

  // ---- live reader ------------------------------------------------------------------------

  #startReading(): void {
    const generation = ++this.#generation;
    this.#position = undefined;
    if (this.#reader === undefined) {
      this.#reader = this.#base.duplicate({
        protocol: 2,
        replyMapping: "legacy",
        keyPrefix: "",
        // A command timeout shorter than blockMs would fail every idle XREAD.
        commandTimeout: undefined,
        ...this.#name("reader"),
      });
      this.#watch(this.#reader, "reader");
    }
    const reader = this.#reader;
    void this.#startId(generation).catch(() => {
      // The read loop retries and reports.
    });
    void this.#readLoop(generation, reader);
  }

  /** The feed's last id when this subscription began (read once, with its origin, on the command connection). */
  #startId(generation: number): Promise<string> {
    if (this.#start?.generation === generation) return this.#start.id;
    const id = this.#feedStatus("").then(({ newest, origin }) => {
      this.#origin = origin;
      return newest === "" ? "0-0" : newest;
    });
    const start = { generation, id };
    this.#start = start;
    id.catch(() => {
      if (this.#start === start) this.#start = undefined;
    });
    return id;
  }

  async #feedStatus(position: string): Promise<FeedStatus> {
    return feedStatusOf(
      await this.#command(
        "the feed status script",
        this.#scripts.feedStatus([this.#keys.feed, this.#keys.origin], [position]),
      ),
    );
  }

  /** Snapshots and log reads wait until the reader knows where it starts, so their cursors are never behind it. */
  async #readerStarted(): Promise<void> {
    if (this.#listeners.size > 0) await this.#startId(this.#generation);
  }

  /**
   * How far the live reader is behind the feed (see `SourceLag`): 0 when its last read found
   * the end of the feed; otherwise the time since the newest envelope it delivered was
   * recorded (stream ids start with their time in ms). `undefined` while nobody subscribes.
   */
  lag(): SourceLag | undefined {
    if (this.#listeners.size === 0 || this.#position === undefined) return undefined;
    if (!this.#behind) return { ms: 0 };
    const recorded = Number(this.#position.slice(0, this.#position.indexOf("-")));
    return Number.isFinite(recorded) && recorded > 0 ? { ms: Math.max(0, Date.now() - recorded) } : {};
  }

  async #readLoop(generation: number, reader: Redis): Promise<void> {
    while (generation === this.#generation) {
      try {
        const start = await this.#startId(generation);
        if (generation !== this.#generation) return;
        this.#position ??= start;
        // ioredis re-sends this command unchanged when the connection drops before the
        // reply, so the read resumes exactly after `after`.
        const reply: unknown = await this.#answers.watch(
          "reader",
          "an XREAD",
          reader.xread("COUNT", this.#readCount, "BLOCK", this.#blockMs, "STREAMS", this.#keys.feed, this.#position),
          this.#blockMs,
        );
        if (generation !== this.#generation) return;
        // After an outage, nothing read is delivered before the feed is known to still hold
        // where the reader was: else clients would take ids past a gap and resume after it.
        // (An XREAD re-sent to a Redis that came back empty answers after blockMs, so that
        // is how long a restart may take to be reported.)
        if (this.#interrupted) await this.#checkFeed();
        if (generation !== this.#generation) return;
        const entries = entriesOf(reply);
        for (const entry of entries) {
          this.#position = entry[0];
          const envelope = this.#envelopeOf(entry);
          if (envelope !== undefined) this.#deliver(envelope);
        }
        // A short read found the end of the feed: caught up as of now.
        this.#behind = entries.length >= this.#readCount;
      } catch (error) {
        this.#behind = true;
        if (generation !== this.#generation) return;
        const message = error instanceof Error ? error.message : String(error);
        this.#report(
          new Error(
            `runcast/redis: reading the envelope feed failed (${message}); trying again after ${this.#position ?? "its start"}`,
            { cause: error },
          ),
          { phase: "read", connection: "reader" },
        );
        await this.#sleep(READ_RETRY_MS);
      }
    }
  }

  /** Whether the reader's connection dropped since the feed was last checked. */
  get #interrupted(): boolean {
    return this.#interruptions > this.#checkedThrough;
  }

  /**
   * After an outage of the reader: finds out whether the feed still holds where it reads.
   * Trimmed past it means it fell more than `historySize` envelopes behind and some were never
   * delivered live here; a feed that no longer holds it, or whose origin changed, means Redis
   * lost its data (restarted without persistence, flushed). Both are reported and told to
   * subscribers through `onGap`, so that their clients resume (or learn their runs are gone).
   */
  async #checkFeed(): Promise<void> {
    const position = this.#position;
    const through = this.#interruptions;
    if (position === undefined || this.#closing !== undefined) return;
    const status = await this.#feedStatus(position === "0-0" ? "" : position);
    this.#checkedThrough = Math.max(this.#checkedThrough, through);
    const reason = feedLoss(position, this.#origin, status);
    this.#origin = status.origin;
    if (reason === undefined || this.#closing !== undefined) return;
    const message =
      reason === "trimmed"
        ? `runcast/redis: while the reader was away the feed was trimmed past ${position}, so envelopes recorded meanwhile may not have been delivered live by this process; raise historySize if outages outlast it`
        : `runcast/redis: Redis lost its data while the reader was away (restarted without persistence, or flushed): the feed no longer holds ${position === "0-0" ? "its start" : position}${status.origin === "" ? " and is empty" : ` and began again at ${status.origin}`}. Runs recorded before are gone`;
    this.#report(new Error(message), { phase: "read", connection: "reader" });
    const gap: LiveGap = { reason, message };
    for (const onGap of [...this.#listeners.values()]) {
      try {
        onGap?.(gap);
      } catch (error) {
        this.#report(error instanceof Error ? error : new Error(String(error)), { phase: "listener" });
      }
    }
  }

  #deliver(envelope: Envelope<State, Event>): void {
    for (const listener of [...this.#listeners.keys()]) {
      try {
        listener(envelope);
      } catch (error) {
        this.#report(error instanceof Error ? error : new Error(String(error)), { phase: "listener" });
      }
    }
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const entry = {
        timer: setTimeout(() => {
          this.#timers.delete(entry);
          resolve();
        }, ms),
        wake: resolve,
      };
      this.#timers.add(entry);
    });
  }
}

export type { RunSnapshot } from "../source";
