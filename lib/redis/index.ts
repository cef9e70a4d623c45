import { randomUUID } from "node:crypto";
import { Redis } from "ioredis";
import { RuncastError } from "../errors";
import { positiveInteger } from "../options";
import { type Envelope, isValidRunId, type RunEvent, type RunState } from "../schema";
import { compareEnvelopeIds, type RunEventSource, type RunSnapshot } from "../source";
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
} from "../writer-input";
import { installScripts, type ScriptName, type ScriptRunner } from "./scripts";

export { RuncastError, type RuncastErrorCode } from "../errors";
export type { EventInput, RunCompletion, RunInit, RunPatch } from "../writer-input";

/** Default Redis address. */
export const DEFAULT_REDIS_URL = "redis://127.0.0.1:6379";
/** Default key prefix. */
export const DEFAULT_REDIS_PREFIX = "runcast";
/** Default length the envelope stream is trimmed to (`XADD ... MAXLEN ~`). */
export const DEFAULT_REDIS_HISTORY_SIZE = 10_000;
/** Default number of finished runs kept readable. */
export const DEFAULT_REDIS_MAX_FINISHED_RUNS = 1_000;
/**
 * Default time a write's outcome is remembered for, in ms. ioredis keeps unanswered commands
 * for at most `maxRetriesPerRequest` (20) reconnect attempts, about a minute and a half with
 * its default backoff; five minutes leaves a wide margin.
 */
export const DEFAULT_RESEND_WINDOW_MS = 300_000;
/** Default most entries one `XREAD` returns. */
export const DEFAULT_READ_COUNT = 100;
/** Default time one `XREAD` blocks waiting for entries, in ms. */
export const DEFAULT_BLOCK_MS = 5_000;
/** Pause before the live reader tries again after a failed read, in ms. */
const READ_RETRY_MS = 1_000;
/** Stream ids: `<ms>-<seq>`, both unsigned 64-bit. */
const STREAM_ID = /^(\d{1,20})-(\d{1,20})$/;
const UINT64_MAX = 2n ** 64n - 1n;
/** Valid key prefixes: printable ASCII without spaces. */
const PREFIX_PATTERN = /^[\x21-\x7e]{1,128}$/;

/** Where a problem reported to {@link RedisRunSourceOptions.onError} happened. */
export type RedisErrorPhase =
  /** A connection to Redis failed or closed; it reconnects on its own. */
  | "connection"
  /** The live reader's `XREAD` failed; it tries again from the last id it delivered. */
  | "read"
  /** A stream entry could not be turned into an envelope; it is skipped. */
  | "entry"
  /** A subscriber threw; the others still get the envelope. */
  | "listener";

/** What `onError` is told besides the error itself. */
export interface RedisErrorContext {
  phase: RedisErrorPhase;
  /** Which of the source's connections: `commands` (writes and reads) or `reader` (the blocking live reader). */
  connection?: "commands" | "reader";
}

/** Options of {@link RedisRunSource}. */
export interface RedisRunSourceOptions {
  /**
   * Redis address (`redis://[[user]:password@]host[:port][/db]`, `rediss://` for TLS).
   * Ignored when `redis` is given.
   * @default "redis://127.0.0.1:6379"
   */
  url?: string;
  /**
   * An ioredis client to copy the connection settings from: the source `duplicate()`s it for
   * its own connections and never closes it.
   */
  redis?: Redis;
  /**
   * Prefix of every key, so several deployments share one Redis: `<prefix>:log`,
   * `<prefix>:run:<id>`, ... (1 to 128 printable characters without spaces). With a client
   * given as `redis` that has a `keyPrefix`, keys start with that, then this.
   * @default "runcast"
   */
  prefix?: string;
  /**
   * How many envelopes (of all runs together) the stream keeps for `Last-Event-ID` replay.
   * Trimming is approximate (`MAXLEN ~`): Redis drops whole nodes, so a few more may stay.
   * A client that reconnects after more than this many envelopes gets a fresh snapshot.
   * @default 10000
   */
  historySize?: number;
  /**
   * How many finished runs stay readable (state and `complete` envelope) before the oldest
   * is forgotten. Active runs are never forgotten.
   * @default 1000
   */
  maxFinishedRuns?: number;
  /**
   * How long, in ms, each write's outcome stays in Redis under its write id, so a command
   * ioredis sends again after losing its reply returns the first outcome instead of
   * recording twice. Keep it above the longest outage your ioredis settings wait through.
   * @default 300000
   */
  resendWindowMs?: number;
  /**
   * Most entries the live reader takes per `XREAD`.
   * @default 100
   */
  readCount?: number;
  /**
   * How long, in ms, one `XREAD` of the live reader blocks waiting for entries.
   * @default 5000
   */
  blockMs?: number;
  /**
   * Told of connection losses (once per outage, with what happens next), failed reads,
   * unreadable stream entries and subscribers that throw. The source recovers from all of
   * them by itself. Defaults to `process.emitWarning`.
   */
  onError?: (error: Error, context: RedisErrorContext) => void;
}

/** A stream entry as Redis returns it: id, then flat field/value pairs. */
type StreamEntry = [id: string, fields: string[]];

/** One run's status, as a write that fails validation needs it to report the right error. */
type RunCondition = { kind: "missing" } | { kind: "active" } | { kind: "finished"; status: string };

function isStreamId(id: string): boolean {
  const match = STREAM_ID.exec(id);
  return match !== null && BigInt(match[1] ?? "0") <= UINT64_MAX && BigInt(match[2] ?? "0") <= UINT64_MAX;
}

function isStringArray(value: unknown): value is string[] {
  return Array.isArray(value) && value.every((item) => typeof item === "string");
}

function isEntry(value: unknown): value is StreamEntry {
  return Array.isArray(value) && value.length === 2 && typeof value[0] === "string" && isStringArray(value[1]);
}

function notFound(runId: unknown): RuncastError {
  return new RuncastError("run_not_found", `run ${JSON.stringify(runId)} does not exist`);
}

/**
 * A state's top-level fields as hash fields: name and value both JSON. A value JSON cannot
 * represent (`undefined`, a function) is deleted, as `JSON.stringify` would leave it out.
 */
function fieldArgs(fields: Record<string, unknown>, skipId: boolean): string[] {
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

/**
 * The event source on Redis, for several processes serving the same runs: the same writer
 * API as `MemoryRunSource` (asynchronous) and the {@link RunEventSource} reader side.
 *
 * Envelopes go to one Redis stream (their ids are its entry ids), run states to one hash per
 * run; each write is a single Lua script, atomic and safe to send twice. Each process holds
 * two connections whatever its number of SSE clients: one for commands, opened at once, and
 * one for the blocking live reader, opened by the first `subscribe`. Both reconnect by
 * themselves; the reader then reads on after the last envelope it delivered.
 *
 * Requires Redis 6.2 or later, standalone or behind Sentinel (not Redis Cluster: the
 * scripts touch keys derived from run ids).
 */
export class RedisRunSource implements RunEventSource {
  /** The key prefix in use. */
  readonly prefix: string;
  readonly #commands: Redis;
  readonly #scripts: Record<ScriptName, ScriptRunner>;
  readonly #base: Redis;
  /** Whether our connections get names (`<prefix>:commands`, `<prefix>:reader`, handy in CLIENT LIST): unless the caller named theirs. */
  readonly #named: boolean;
  #reader: Redis | undefined;
  readonly #keys: {
    log: string;
    active: string;
    finished: string;
    order: string;
    runPrefix: string;
    writePrefix: string;
  };
  readonly #historySize: number;
  readonly #maxFinishedRuns: number;
  readonly #resendWindowMs: number;
  readonly #readCount: number;
  readonly #blockMs: number;
  readonly #onError: (error: Error, context: RedisErrorContext) => void;
  readonly #listeners = new Set<(envelope: Envelope) => void>();
  /** Bumped when reading starts or stops, so a read loop of an earlier subscription ends. */
  #generation = 0;
  /** Where the current read loop starts: the stream's last id when the first listener came. */
  #start: { generation: number; id: Promise<string> } | undefined;
  /** The id the live reader reads after: its start, then the last entry it took. */
  #position: string | undefined;
  readonly #timers = new Set<{ timer: NodeJS.Timeout; wake: () => void }>();
  /** Writes not answered yet, rejected by `close()` when their connection is down. */
  readonly #inFlight = new Set<(error: Error) => void>();
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
        `prefix must be 1 to 128 printable characters without spaces, got ${JSON.stringify(prefix)}`,
      );
    }
    if (options.onError !== undefined && typeof options.onError !== "function") {
      throw new RuncastError("invalid_option", "onError must be a function");
    }
    this.prefix = prefix;
    this.#historySize = positiveInteger("historySize", options.historySize, DEFAULT_REDIS_HISTORY_SIZE);
    this.#maxFinishedRuns = positiveInteger(
      "maxFinishedRuns",
      options.maxFinishedRuns,
      DEFAULT_REDIS_MAX_FINISHED_RUNS,
    );
    this.#resendWindowMs = positiveInteger("resendWindowMs", options.resendWindowMs, DEFAULT_RESEND_WINDOW_MS);
    this.#readCount = positiveInteger("readCount", options.readCount, DEFAULT_READ_COUNT);
    this.#blockMs = positiveInteger("blockMs", options.blockMs, DEFAULT_BLOCK_MS);
    this.#onError =
      options.onError ?? ((error, context) => process.emitWarning(`runcast: ${error.message} (${context.phase})`));
    // A caller's client may prefix its keys (ioredis `keyPrefix`): ours go under that prefix
    // too, applied here rather than by ioredis, which would miss the keys the scripts derive.
    const keyPrefix = options.redis?.options.keyPrefix ?? "";
    const base = `${keyPrefix}${prefix}`;
    this.#keys = {
      log: `${base}:log`,
      active: `${base}:active`,
      finished: `${base}:finished`,
      order: `${base}:order`,
      runPrefix: `${base}:run:`,
      writePrefix: `${base}:write:`,
    };
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
    this.#scripts = installScripts(this.#commands);
    this.#watch(this.#commands, "commands");
  }

  // ---- writer side -------------------------------------------------------------------

  /** Creates a run (status `pending` unless given) and announces its first `state` envelope. */
  async createRun(init: RunInit): Promise<RunState> {
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
      [this.#keys.active, this.#keys.order],
      [runId, ...fieldArgs(state, false)],
    );
    return this.#parseJson(data) as RunState;
  }

  /** Records an event of an active run (`run_id` and `ts` filled in when absent) and announces it. */
  async recordEvent(runId: string, event: EventInput): Promise<Envelope> {
    this.#assertOpen();
    if (!isValidRunId(runId)) throw notFound(runId);
    const parsed = parseEvent(runId, event);
    if (parsed instanceof RuncastError) return this.#failUnlessActive(runId, parsed);
    const json = JSON.stringify(parsed);
    const { id } = await this.#write("recordEvent", runId, [], [runId, json]);
    return { type: "event", runId, id, data: this.#parseJson(json) as RunEvent };
  }

  /** Merges `patch` into an active run's state and announces the new `state`. */
  async updateRun(runId: string, patch: RunPatch): Promise<RunState> {
    this.#assertOpen();
    if (!isValidRunId(runId)) throw notFound(runId);
    const fields: Record<string, unknown> = { ...patch };
    const problem = patchProblem(runId, patch) ?? checkMerge(runId, fields, "pending", false);
    if (problem !== undefined) return this.#failUnlessActive(runId, problem);
    const { data } = await this.#write("updateRun", runId, [], [runId, ...fieldArgs(fields, true)]);
    return this.#parseJson(data) as RunState;
  }

  /** Ends an active run with a terminal status and announces its `complete` envelope. */
  async completeRun(runId: string, final: RunCompletion): Promise<Envelope> {
    this.#assertOpen();
    if (!isValidRunId(runId)) throw notFound(runId);
    const fields: Record<string, unknown> = { ...final };
    const problem = completionProblem(final) ?? checkMerge(runId, fields, final.status, true);
    if (problem !== undefined) return this.#failUnlessActive(runId, problem);
    const { id, data } = await this.#write(
      "completeRun",
      runId,
      [this.#keys.active, this.#keys.order, this.#keys.finished],
      [runId, this.#maxFinishedRuns, this.#keys.runPrefix, ...fieldArgs(fields, true)],
    );
    return { type: "complete", runId, id, data: this.#parseJson(data) as RunState };
  }

  // ---- reader side (RunEventSource) -----------------------------------------------------

  /** The run's current state (terminal once it finished), or `undefined` when unknown or forgotten. */
  async getRun(runId: string): Promise<RunState | undefined> {
    if (!isValidRunId(runId)) return undefined;
    const json = await this.#commands.hget(this.#runKey(runId), "state");
    return json === null ? undefined : (this.#parseJson(json) as RunState);
  }

  /** The active runs, in creation order. */
  async listRuns(): Promise<RunState[]> {
    return (await this.snapshot()).states;
  }

  /** States and their cursor read in one script, so the cursor is exactly the newest envelope they reflect. */
  async snapshot(): Promise<RunSnapshot>;
  async snapshot(runId: string): Promise<RunSnapshot | undefined>;
  async snapshot(runId?: string): Promise<RunSnapshot | undefined> {
    if (runId !== undefined && !isValidRunId(runId)) return undefined;
    await this.#readerStarted();
    const reply = await this.#scripts.snapshot(
      [this.#keys.log, this.#keys.active],
      [this.#keys.runPrefix, runId ?? ""],
    );
    if (!isStringArray(reply) || reply.length === 0) throw new Error("runcast/redis: unexpected snapshot reply");
    const [cursor, ...states] = reply;
    if (runId !== undefined && states.length === 0) return undefined;
    return {
      states: states.map((json) => this.#parseJson(json) as RunState),
      cursor: cursor === "" || cursor === undefined ? undefined : cursor,
    };
  }

  /** A finished run's `complete` envelope, id included; `undefined` while it is active or when unknown. */
  async getCompletion(runId: string): Promise<Envelope | undefined> {
    if (!isValidRunId(runId)) return undefined;
    const [state, id] = await this.#commands.hmget(this.#runKey(runId), "state", "complete");
    if (state == null || id == null) return undefined;
    return { type: "complete", runId, id, data: this.#parseJson(state) as RunState };
  }

  /**
   * The envelopes after `afterId`, oldest first (of one run when `runId` is given), read in
   * one script; `null` when `afterId` is not an entry the stream still holds (trimmed away,
   * never ours, or not a stream id at all).
   */
  async replay(afterId: string, runId?: string): Promise<Envelope[] | null> {
    if (typeof afterId !== "string" || !isStreamId(afterId)) return null;
    if (runId !== undefined && !isValidRunId(runId)) return null;
    await this.#readerStarted();
    const reply = await this.#scripts.replay([this.#keys.log], [afterId, runId ?? ""]);
    if (reply === null) return null;
    if (!Array.isArray(reply)) throw new Error("runcast/redis: unexpected replay reply");
    const out: Envelope[] = [];
    for (const entry of reply) {
      const envelope = isEntry(entry) ? this.#envelopeOf(entry) : undefined;
      if (envelope !== undefined) out.push(envelope);
    }
    return out;
  }

  /**
   * Delivers every envelope recorded from now on, by any process, in id order. The first
   * subscriber opens the reader connection and starts a blocking `XREAD` loop after the
   * stream's last id at that moment (not `$`, which would skip what is written before the
   * first read arrives); snapshots and replays read after that point, so their cursors never
   * precede it.
   */
  subscribe(listener: (envelope: Envelope) => void): () => void {
    this.#assertOpen();
    this.#listeners.add(listener);
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
   * connected, so writes already sent get their answer; writes still waiting for a lost
   * connection are rejected. Later writes and subscriptions throw `unavailable`.
   */
  close(): Promise<void> {
    if (this.#closing !== undefined) return this.#closing;
    this.#generation++;
    this.#listeners.clear();
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

  #runKey(runId: string): string {
    return `${this.#keys.runPrefix}${runId}`;
  }

  #name(role: "commands" | "reader"): { connectionName?: string } {
    return this.#named ? { connectionName: `${this.prefix}:${role}` } : {};
  }

  #report(error: Error, context: RedisErrorContext): void {
    try {
      this.#onError(error, context);
    } catch {
      // A throwing onError must not stop the reader.
    }
  }

  /** Reports a connection's trouble once per outage, saying what happens next. */
  #watch(connection: Redis, role: "commands" | "reader"): void {
    let reported = false;
    const next =
      role === "commands"
        ? "reconnecting; writes wait for it and are sent again, recorded once"
        : "reconnecting, then reading on after the last envelope delivered, so nothing is lost or repeated";
    connection.on("ready", () => {
      if (reported && role === "reader") void this.#checkPosition();
      reported = false;
    });
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

  /** Runs a write script with a fresh write id; maps refusals to the errors MemoryRunSource throws. */
  async #write(
    script: ScriptName,
    runId: string,
    extraKeys: string[],
    args: (string | number)[],
  ): Promise<{ id: string; data: string }> {
    const writeKey = `${this.#keys.writePrefix}${randomUUID()}`;
    const keys = [this.#keys.log, this.#runKey(runId), writeKey, ...extraKeys];
    const reply = await this.#tracked(this.#scripts[script](keys, [this.#resendWindowMs, this.#historySize, ...args]));
    if (!isStringArray(reply) || reply.length !== 3) throw new Error("runcast/redis: unexpected write reply");
    const [outcome, first, second] = reply as [string, string, string];
    if (outcome === "ok") return { id: first, data: second };
    if (first === "run_exists") throw new RuncastError("run_exists", `run ${runId} already exists`);
    if (first === "run_finished") throw finished(runId, second === "" ? "finished" : String(JSON.parse(second)));
    if (first === "run_not_found") throw notFound(runId);
    throw new RuncastError("internal_error", `runcast/redis: unexpected refusal ${first}`);
  }

  /** Lets `close()` reject a write whose connection is gone rather than leave it pending forever. */
  #tracked<T>(promise: Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.#inFlight.add(reject);
      promise.then(resolve, reject).finally(() => this.#inFlight.delete(reject));
    });
  }

  /** A write that failed validation: reports the run being unknown or finished first, as MemoryRunSource does. */
  async #failUnlessActive(runId: string, problem: RuncastError): Promise<never> {
    const condition = await this.#condition(runId);
    if (condition.kind === "missing") throw notFound(runId);
    if (condition.kind === "finished") throw finished(runId, condition.status);
    throw problem;
  }

  async #condition(runId: string): Promise<RunCondition> {
    const [status, complete] = await this.#commands.hmget(this.#runKey(runId), '"status"', "complete");
    if (status == null) return { kind: "missing" };
    if (complete == null) return { kind: "active" };
    return { kind: "finished", status: String(JSON.parse(status)) };
  }

  #parseJson(json: string): unknown {
    return JSON.parse(json);
  }

  #envelopeOf([id, fields]: StreamEntry): Envelope | undefined {
    let type: string | undefined;
    let runId: string | undefined;
    let data: string | undefined;
    for (let i = 0; i + 1 < fields.length; i += 2) {
      const value = fields[i + 1];
      if (fields[i] === "t") type = value;
      else if (fields[i] === "r") runId = value;
      else if (fields[i] === "d") data = value;
    }
    if ((type === "event" || type === "state" || type === "complete") && runId !== undefined && data !== undefined) {
      try {
        // The router validates every envelope; here it only needs the right shape.
        return { type, runId, id, data: JSON.parse(data) } as Envelope;
      } catch {
        // Reported below.
      }
    }
    this.#report(new Error(`runcast/redis: stream entry ${id} is not an envelope; skipped`), { phase: "entry" });
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

  /** The stream's last id when this subscription began (read once, on the command connection). */
  #startId(generation: number): Promise<string> {
    if (this.#start?.generation === generation) return this.#start.id;
    const id = this.#commands
      .xrevrange(this.#keys.log, "+", "-", "COUNT", 1)
      .then((entries: unknown) => (Array.isArray(entries) && isEntry(entries[0]) ? entries[0][0] : "0-0"));
    const start = { generation, id };
    this.#start = start;
    id.catch(() => {
      if (this.#start === start) this.#start = undefined;
    });
    return id;
  }

  /** Snapshots and replays wait until the reader knows where it starts, so their cursors are never behind it. */
  async #readerStarted(): Promise<void> {
    if (this.#listeners.size > 0) await this.#startId(this.#generation);
  }

  async #readLoop(generation: number, reader: Redis): Promise<void> {
    while (generation === this.#generation) {
      try {
        const start = await this.#startId(generation);
        if (generation !== this.#generation) return;
        this.#position ??= start;
        // ioredis re-sends this command unchanged when the connection drops before the
        // reply, so the read resumes exactly after `after`.
        const reply: unknown = await reader.xread(
          "COUNT",
          this.#readCount,
          "BLOCK",
          this.#blockMs,
          "STREAMS",
          this.#keys.log,
          this.#position,
        );
        if (generation !== this.#generation) return;
        for (const entry of entriesOf(reply)) {
          this.#position = entry[0];
          const envelope = this.#envelopeOf(entry);
          if (envelope !== undefined) this.#deliver(envelope);
        }
      } catch (error) {
        if (generation !== this.#generation) return;
        const message = error instanceof Error ? error.message : String(error);
        this.#report(
          new Error(
            `runcast/redis: reading the envelope stream failed (${message}); trying again after ${this.#position ?? "its start"}`,
            { cause: error },
          ),
          { phase: "read", connection: "reader" },
        );
        await this.#sleep(READ_RETRY_MS);
      }
    }
  }

  /**
   * After an outage of the reader: reports when the stream was trimmed past where it reads,
   * which means it fell more than `historySize` envelopes behind and some were never
   * delivered live here (clients still replay or resync when they reconnect).
   */
  async #checkPosition(): Promise<void> {
    const position = this.#position;
    if (position === undefined || position === "0-0" || this.#closing !== undefined) return;
    try {
      if ((await this.#commands.xrange(this.#keys.log, position, position)).length > 0) return;
    } catch {
      return; // The command connection reports its own trouble.
    }
    this.#report(
      new Error(
        `runcast/redis: while the reader was away the stream was trimmed past ${position}, so envelopes recorded meanwhile may not have been delivered live by this process; raise historySize if outages outlast it`,
      ),
      { phase: "read", connection: "reader" },
    );
  }

  #deliver(envelope: Envelope): void {
    for (const listener of [...this.#listeners]) {
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

/** The merged state a patch would give, checked field by field against the schema. */
function checkMerge(
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

function finished(runId: string, status: string): RuncastError {
  return new RuncastError("run_finished", `run ${runId} is already ${status}`);
}

/** The entries of an `XREAD` reply (RESP2 shape: `[[key, [[id, fields], ...]]]`, or null). */
function entriesOf(reply: unknown): StreamEntry[] {
  if (!Array.isArray(reply)) return [];
  const out: StreamEntry[] = [];
  for (const stream of reply) {
    if (!Array.isArray(stream) || !Array.isArray(stream[1])) continue;
    for (const entry of stream[1]) if (isEntry(entry)) out.push(entry);
  }
  return out;
}

/** Closes one of our connections and resolves once it is gone. */
function release(connection: Redis, graceful: boolean): Promise<void> {
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

export type { RunSnapshot } from "../source";
