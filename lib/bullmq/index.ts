import { Redis, type RedisOptions } from "ioredis";
import { RuncastError } from "../errors";
import { positiveInteger } from "../options";
import { type Envelope, isValidRunId, type RunState } from "../schema";
import type { LiveGap, LogGap, LogPage, LogQuery, RunEventSource, RunSnapshot } from "../source";
import { Derivation, type StreamEntry } from "./derive";
import { compareBullmqIds, parseEnvelopeId } from "./ids";
import { CLAIM_SCRIPT } from "./scripts";

export { compareBullmqIds } from "./ids";

/** Default BullMQ key prefix. */
export const DEFAULT_BULLMQ_PREFIX = "bull";
/** Default interval at which active jobs' new `job.log` lines are looked for, in ms. */
export const DEFAULT_LOG_POLL_MS = 250;
/** Default time one `XREAD` of the live reader blocks, in ms. */
export const DEFAULT_BULLMQ_BLOCK_MS = 5_000;
/** Entries read per `XRANGE`/`XREAD` call. */
const PAGE = 1_000;
const READ_RETRY_MS = 1_000;

/** Where a problem reported to {@link BullMQRunSourceOptions.onError} happened. */
export type BullMQErrorPhase =
  /** A job id that is not a valid run id (1 to 128 of `[A-Za-z0-9._:-]`): the job is not served. */
  | "job_id"
  /** Reading BullMQ's event stream failed; the reader tries again from where it was. */
  | "read"
  /** Copying `job.log` lines into the event stream failed; tried again at the next poll. */
  | "logs"
  /** A subscriber threw; the others still get the envelope. */
  | "listener";

/** Options of {@link BullMQRunSource}. */
export interface BullMQRunSourceOptions {
  /** The BullMQ queue's name. */
  queue: string;
  /**
   * The Redis BullMQ uses: an ioredis client (duplicated, never closed by the source) or
   * ioredis options.
   * @default { host: "127.0.0.1", port: 6379 }
   */
  connection?: Redis | RedisOptions;
  /**
   * BullMQ's key prefix (its `prefix` option).
   * @default "bull"
   */
  prefix?: string;
  /**
   * How often, in ms, active jobs' logs are checked for new `job.log` lines (BullMQ announces
   * none in its event stream).
   * @default 250
   */
  logPollMs?: number;
  /**
   * How long, in ms, one `XREAD` of the live reader blocks.
   * @default 5000
   */
  blockMs?: number;
  /** Told of job ids that are not run ids, failed reads and throwing subscribers. Defaults to `process.emitWarning`. */
  onError?: (error: Error, context: { phase: BullMQErrorPhase; jobId?: string }) => void;
}

type Connection = Redis;

function entriesOf(reply: unknown): StreamEntry[] {
  if (!Array.isArray(reply)) return [];
  const out: StreamEntry[] = [];
  for (const item of reply) {
    if (!Array.isArray(item) || typeof item[0] !== "string" || !Array.isArray(item[1])) continue;
    const fields = new Map<string, string>();
    const flat = item[1] as unknown[];
    for (let i = 0; i + 1 < flat.length; i += 2) fields.set(String(flat[i]), String(flat[i + 1]));
    out.push({ id: item[0], fields });
  }
  return out;
}

/** Everything the event stream gives right now, derived. */
interface Reading {
  envelopes: Envelope[];
  derivation: Derivation;
  /** Whether entries were trimmed from the stream's start. */
  trimmed: boolean;
}

/**
 * A BullMQ queue's jobs as runs: the job id is the run id; BullMQ's event stream gives states
 * (waiting, delayed, waiting-children, active, stalled, progress) and the `complete`; a job's
 * `job.log` lines become `job.log` events; a flow's child jobs in the same queue are the
 * parent run's units. Live delivery and resumes read BullMQ's own event stream, so workers
 * need nothing but BullMQ.
 */
export class BullMQRunSource implements RunEventSource {
  /** The BullMQ queue served. */
  readonly queue: string;
  readonly #base: string;
  readonly #keys: { events: string; meta: string; active: string; waitingChildren: string };
  readonly #commands: Connection;
  #reader: Connection | undefined;
  readonly #source: Redis | RedisOptions;
  readonly #logPollMs: number;
  readonly #blockMs: number;
  readonly #onError: NonNullable<BullMQRunSourceOptions["onError"]>;
  readonly #listeners = new Set<(envelope: Envelope) => void>();
  readonly #gapListeners = new Set<(gap: LiveGap) => void>();
  readonly #parents = new Map<string, string | null>();
  readonly #badIds = new Set<string>();
  #generation = 0;
  #poll: NodeJS.Timeout | undefined;
  #closed = false;
  /** The last reading of the whole stream, and the stream content it was read from. */
  #cache: { key: string; reading: Reading } | undefined;
  #readerInterrupted = false;

  /** Connects to Redis at once; options are checked now, throwing `invalid_option`. */
  constructor(options: BullMQRunSourceOptions) {
    if (typeof options?.queue !== "string" || options.queue === "" || options.queue.includes(":")) {
      throw new RuncastError("invalid_option", "queue must be a BullMQ queue name (a non-empty string without ':')");
    }
    const prefix = options.prefix ?? DEFAULT_BULLMQ_PREFIX;
    this.queue = options.queue;
    this.#base = `${prefix}:${options.queue}:`;
    this.#keys = {
      events: `${this.#base}events`,
      meta: `${this.#base}meta`,
      active: `${this.#base}active`,
      waitingChildren: `${this.#base}waiting-children`,
    };
    this.#logPollMs = positiveInteger("logPollMs", options.logPollMs, DEFAULT_LOG_POLL_MS);
    this.#blockMs = positiveInteger("blockMs", options.blockMs, DEFAULT_BULLMQ_BLOCK_MS);
    this.#onError =
      options.onError ??
      ((error, context) => process.emitWarning(`runcast/bullmq: ${error.message} (${context.phase})`));
    const settings = { protocol: 2, keyPrefix: "" } as const;
    this.#source = options.connection ?? {};
    this.#commands =
      options.connection instanceof Redis
        ? options.connection.duplicate(settings)
        : new Redis({ host: "127.0.0.1", port: 6379, ...options.connection, ...settings });
    this.#commands.on("error", () => {
      // ioredis reconnects by itself; reads fail meanwhile and are reported where they happen.
    });
    this.#commands.defineCommand("runcastClaimLogs", { numberOfKeys: 2, lua: CLAIM_SCRIPT });
  }

  /**
   * Resolves once the source's command connection to Redis is ready. `subscribe` starts after
   * the newest entry when its first command reaches Redis: subscribing once this resolved
   * makes "everything written after `subscribe` returned" exact even with writers on other
   * connections (BullMQ's own).
   */
  ready(): Promise<void> {
    if (this.#commands.status === "ready") return Promise.resolve();
    // A connection made with `lazyConnect` waits for its first command: connect it now.
    if (this.#commands.status === "wait") this.#commands.connect().catch(() => {});
    return new Promise((resolve, reject) => {
      const onReady = (): void => {
        this.#commands.off("end", onEnd);
        resolve();
      };
      const onEnd = (): void => {
        this.#commands.off("ready", onReady);
        reject(new RuncastError("unavailable", "the BullMQRunSource's connection ended"));
      };
      this.#commands.once("ready", onReady);
      this.#commands.once("end", onEnd);
    });
  }

  // ---- RunEventSource -------------------------------------------------------------------

  /** The run's state, folded from its log; `undefined` when the stream holds nothing of the job. */
  async getRun(runId: string): Promise<RunState | undefined> {
    return (await this.snapshot(runId))?.states[0];
  }

  /** The runs whose `complete` the event stream does not hold yet. */
  async listRuns(): Promise<RunState[]> {
    return (await this.snapshot())?.states ?? [];
  }

  /** One run's state (folded from its log) or every active run's, with the newest envelope's id, from one read. */
  async snapshot(runId?: string): Promise<RunSnapshot | undefined> {
    const { envelopes, derivation } = await this.#readAll(runId);
    if (runId === undefined) {
      const states: RunState[] = [];
      for (const run of derivation.runs.values()) if (!run.done) states.push(run.state);
      return { states, cursor: envelopes[envelopes.length - 1]?.id };
    }
    const run = derivation.runs.get(runId);
    if (run === undefined) return undefined;
    const mine = envelopes.filter((envelope) => envelope.runId === runId);
    return { states: [run.state], cursor: mine[mine.length - 1]?.id };
  }

  /** A finished run's `complete` envelope (from its `runcast:done` entry), id included. */
  async getCompletion(runId: string): Promise<Envelope | undefined> {
    const { envelopes } = await this.#readAll();
    const mine = envelopes.filter((envelope) => envelope.runId === runId);
    const last = mine[mine.length - 1];
    return last?.type === "complete" ? last : undefined;
  }

  /**
   * A run's log, or all runs', from the start or after an id. Both read the queue's whole
   * event stream (BullMQ keeps one per queue, about `maxLenEvents` entries): a per-run read
   * cannot avoid the other jobs' entries.
   */
  async readLog(query: LogQuery): Promise<LogPage | LogGap | undefined> {
    const { envelopes, derivation, trimmed } = await this.#readAll(query.runId);
    const limit = Math.max(1, Math.floor(query.limit));
    let log = envelopes;
    let fromStart = !trimmed;
    if (query.runId !== undefined) {
      const run = derivation.runs.get(query.runId);
      if (run === undefined) return undefined;
      log = envelopes.filter((envelope) => envelope.runId === query.runId);
      fromStart = run.fromStart;
    }
    if (query.after === undefined) return fromStart ? { envelopes: log.slice(0, limit) } : { gap: "trimmed" };
    const at = log.findIndex((envelope) => envelope.id === query.after);
    if (at >= 0) return { envelopes: log.slice(at + 1, at + 1 + limit) };
    const oldest = log[0]?.id;
    if (
      !fromStart &&
      parseEnvelopeId(query.after) !== undefined &&
      (oldest === undefined || compareBullmqIds(query.after, oldest) < 0)
    ) {
      return { gap: "trimmed" };
    }
    return { gap: "unknown_id" };
  }

  /**
   * The envelopes after `afterId` (of one run, or all), or `null` when that log does not hold
   * the id (one run's replay takes only that run's ids).
   */
  async replay(afterId: string, runId?: string): Promise<Envelope[] | null> {
    const page = await this.readLog({ runId, after: afterId, limit: Number.MAX_SAFE_INTEGER });
    return page === undefined || "gap" in page ? null : page.envelopes;
  }

  /** Orders envelope ids (`<ms>-<seq>-<n>`). */
  compareIds(a: string, b: string): number {
    return compareBullmqIds(a, b);
  }

  /**
   * Delivers envelopes derived from every event-stream entry added after this call's first
   * read (the stream's last id then, not `$`), and polls active jobs for new log lines.
   */
  subscribe(listener: (envelope: Envelope) => void, onGap?: (gap: LiveGap) => void): () => void {
    if (this.#closed) throw new RuncastError("unavailable", "the BullMQRunSource is closed");
    this.#listeners.add(listener);
    if (onGap !== undefined) this.#gapListeners.add(onGap);
    if (this.#listeners.size === 1) this.#start();
    return () => {
      if (onGap !== undefined) this.#gapListeners.delete(onGap);
      if (this.#listeners.delete(listener) && this.#listeners.size === 0) this.#stop();
    };
  }

  /** Stops reading and closes the source's connections (never a client given as `connection`). */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#listeners.clear();
    this.#stop();
    const reader = this.#reader;
    this.#reader = undefined;
    reader?.disconnect();
    await this.#commands.quit().catch(() => this.#commands.disconnect());
  }

  // ---- reading ----------------------------------------------------------------------------

  #report(error: Error, phase: BullMQErrorPhase, jobId?: string): void {
    try {
      this.#onError(error, { phase, jobId });
    } catch {
      // A throwing onError must not stop the reader.
    }
  }

  #derivation(): Derivation {
    return new Derivation(
      (jobId) => this.#parents.get(jobId) ?? undefined,
      (jobId) => {
        if (this.#badIds.has(jobId)) return;
        this.#badIds.add(jobId);
        this.#report(
          new Error(`job id ${JSON.stringify(jobId)} is not a valid run id (1 to 128 of [A-Za-z0-9._:-]); not served`),
          "job_id",
          jobId,
        );
      },
    );
  }

  /** Learns which jobs of `entries` are flow children of a job of this queue (read once per job). */
  async #resolveParents(entries: readonly StreamEntry[]): Promise<void> {
    const unknown = new Set<string>();
    for (const entry of entries) {
      const jobId = entry.fields.get("jobId");
      if (jobId !== undefined && isValidRunId(jobId) && !this.#parents.has(jobId)) unknown.add(jobId);
    }
    if (unknown.size === 0) return;
    const ids = [...unknown];
    const pipeline = this.#commands.pipeline();
    for (const id of ids) pipeline.hget(`${this.#base}${id}`, "parentKey");
    const replies = (await pipeline.exec()) ?? [];
    ids.forEach((id, i) => {
      const key = replies[i]?.[1];
      this.#parents.set(
        id,
        typeof key === "string" && key.startsWith(this.#base) ? key.slice(this.#base.length) : null,
      );
    });
  }

  async #entries(from: string, to: string): Promise<StreamEntry[]> {
    const out: StreamEntry[] = [];
    let start = from;
    for (;;) {
      const page = entriesOf(await this.#commands.xrange(this.#keys.events, start, to, "COUNT", PAGE));
      out.push(...page);
      if (page.length < PAGE) return out;
      start = `(${page[page.length - 1]?.id}`;
    }
  }

  /** Reads and derives the whole event stream; closes finished runs no process has closed yet, first. */
  async #readAll(runId?: string): Promise<Reading> {
    // Lines logged before this read get their place before it, so a snapshot's cursor covers them.
    if (runId === undefined) await this.#pollLogs();
    else if (isValidRunId(runId)) await this.#claim([runId], false).catch(() => undefined);
    for (let attempt = 0; ; attempt++) {
      // A paged resume asks again and again: while the stream is unchanged, one reading serves.
      const info = await this.#streamInfo();
      if (this.#cache !== undefined && this.#cache.key === info.key) return this.#cache.reading;
      const entries = await this.#entries("-", "+");
      await this.#resolveParents(entries);
      const derivation = this.#derivation();
      const envelopes = entries.flatMap((entry) => derivation.derive(entry));
      const unclosed = [...derivation.runs].filter(([, run]) => run.final !== undefined && !run.done).map(([id]) => id);
      if (unclosed.length > 0 && attempt === 0) {
        await this.#claim(unclosed, true);
        continue;
      }
      const trimmed =
        info.entriesAdded === undefined
          ? entries[0]?.fields.get("event") !== "added"
          : info.entriesAdded > entries.length;
      const reading = { envelopes, derivation, trimmed };
      this.#cache = unclosed.length === 0 ? { key: info.key, reading } : undefined;
      return reading;
    }
  }

  /**
   * What identifies the stream's content (its last id, length and first entry: any write or
   * trim changes one), and how many entries it ever took (Redis 7), to tell a trimmed start.
   */
  async #streamInfo(): Promise<{ key: string; entriesAdded?: number }> {
    let info: unknown[];
    try {
      info = (await this.#commands.call("XINFO", "STREAM", this.#keys.events)) as unknown[];
    } catch {
      return { key: "none", entriesAdded: 0 }; // No stream yet.
    }
    const field = (name: string): unknown => {
      const at = info.indexOf(name);
      return at >= 0 ? info[at + 1] : undefined;
    };
    const first = field("first-entry");
    const firstId = Array.isArray(first) ? String(first[0]) : "";
    const added = field("entries-added");
    return {
      key: `${String(field("last-generated-id"))}|${String(field("length"))}|${firstId}`,
      entriesAdded: added === undefined ? undefined : Number(added),
    };
  }

  #claim(jobIds: readonly string[], close: boolean): Promise<unknown> {
    if (jobIds.length === 0) return Promise.resolve(0);
    const call = (this.#commands as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>)
      .runcastClaimLogs;
    return (
      call?.call(this.#commands, this.#keys.events, this.#keys.meta, this.#base, close ? "1" : "0", ...jobIds) ??
      Promise.resolve(0)
    );
  }

  // ---- live -----------------------------------------------------------------------------------

  #start(): void {
    const generation = ++this.#generation;
    // The start position is asked for now, before anything written after subscribe can be missed.
    const start = this.#lastEntryId();
    this.#reader ??= this.#duplicate();
    void this.#readLoop(generation, start);
    const poll = (): void => {
      if (generation !== this.#generation) return;
      void this.#pollLogs().finally(() => {
        if (generation === this.#generation) this.#poll = setTimeout(poll, this.#logPollMs).unref();
      });
    };
    this.#poll = setTimeout(poll, this.#logPollMs).unref();
  }

  #duplicate(): Redis {
    const settings = {
      protocol: 2,
      keyPrefix: "",
      commandTimeout: undefined,
      connectionName: `runcast-bullmq:${this.queue}:reader`,
    } as const;
    const reader =
      this.#source instanceof Redis
        ? this.#source.duplicate(settings)
        : new Redis({ host: "127.0.0.1", port: 6379, ...this.#source, ...settings });
    reader.on("error", () => {
      // Reported by the read loop.
    });
    // ioredis sends a blocked XREAD again after a reconnect, so the loop sees no error: the
    // flag makes it check that the stream still holds its position before delivering more.
    reader.on("close", () => {
      this.#readerInterrupted = true;
    });
    return reader;
  }

  #stop(): void {
    this.#generation++;
    if (this.#poll !== undefined) clearTimeout(this.#poll);
    this.#poll = undefined;
  }

  async #pollLogs(): Promise<void> {
    try {
      const [active, waiting] = await Promise.all([
        this.#commands.lrange(this.#keys.active, 0, -1),
        this.#commands.zrange(this.#keys.waitingChildren, "0", "-1"),
      ]);
      await this.#claim([...active, ...waiting], false);
    } catch (error) {
      this.#report(error instanceof Error ? error : new Error(String(error)), "logs");
    }
  }

  async #readLoop(generation: number, startId: Promise<string>): Promise<void> {
    let position: string | undefined;
    let derivation: Derivation | undefined;
    let failed = false;
    while (generation === this.#generation && !this.#closed) {
      try {
        if (failed && position !== undefined && position !== "0-0" && !(await this.#holds(position))) {
          // The stream lost entries past the reader while it was away: they will never be
          // delivered live. Say so, and start over from the stream as it is now.
          this.#gap(position);
          position = undefined;
          startId = this.#lastEntryId();
        }
        failed = false;
        if (position === undefined || derivation === undefined) {
          position = await startId;
          // What the runs were at the start position, so the first live entries continue them.
          const past = await this.#entries("-", position);
          await this.#resolveParents(past);
          derivation = this.#derivation();
          for (const entry of past) derivation.derive(entry);
        }
        const reader = this.#reader;
        if (reader === undefined) return;
        const reply = (await reader.xread(
          "COUNT",
          PAGE,
          "BLOCK",
          this.#blockMs,
          "STREAMS",
          this.#keys.events,
          position,
        )) as [string, unknown[]][] | null;
        if (generation !== this.#generation) return;
        if (this.#readerInterrupted) {
          this.#readerInterrupted = false;
          if (position !== "0-0" && !(await this.#holds(position))) {
            this.#gap(position);
            position = undefined;
            startId = this.#lastEntryId();
            continue;
          }
        }
        const entries = entriesOf(reply?.[0]?.[1]);
        await this.#resolveParents(entries);
        const finished: string[] = [];
        for (const entry of entries) {
          position = entry.id;
          const event = entry.fields.get("event");
          const jobId = entry.fields.get("jobId");
          if ((event === "completed" || event === "failed") && jobId !== undefined) finished.push(jobId);
          for (const envelope of derivation.derive(entry)) this.#deliver(envelope);
        }
        // Each finished job's last lines and its closing entry; they arrive through the stream.
        if (finished.length > 0) await this.#claim(finished, true);
      } catch (error) {
        if (generation !== this.#generation || this.#closed) return;
        failed = true;
        this.#report(
          new Error(
            `reading the event stream failed (${error instanceof Error ? error.message : String(error)}); trying again`,
          ),
          "read",
        );
        await new Promise((resolve) => setTimeout(resolve, READ_RETRY_MS).unref());
      }
    }
  }

  /** Whether the event stream still holds entry `id`. */
  async #holds(id: string): Promise<boolean> {
    return (await this.#commands.xrange(this.#keys.events, id, id)).length > 0;
  }

  #lastEntryId(): Promise<string> {
    return this.#commands
      .xrevrange(this.#keys.events, "+", "-", "COUNT", 1)
      .then((reply) => entriesOf(reply)[0]?.id ?? "0-0");
  }

  #gap(position: string): void {
    const gap: LiveGap = {
      reason: "trimmed",
      message: `runcast/bullmq: the event stream of queue ${this.queue} no longer holds ${position}, where the live reader was; entries added meanwhile were not delivered live (raise BullMQ's streams.events.maxLen if outages outlast it)`,
    };
    for (const listener of [...this.#gapListeners]) {
      try {
        listener(gap);
      } catch (error) {
        this.#report(error instanceof Error ? error : new Error(String(error)), "listener");
      }
    }
  }

  #deliver(envelope: Envelope): void {
    for (const listener of [...this.#listeners]) {
      try {
        listener(envelope);
      } catch (error) {
        this.#report(error instanceof Error ? error : new Error(String(error)), "listener");
      }
    }
  }
}
