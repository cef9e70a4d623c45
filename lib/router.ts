import type { IncomingMessage, ServerResponse } from "node:http";
import { type Request, type Response, Router } from "express";
import { RuncastError, type RuncastErrorCode } from "./errors";
import { FrameCache } from "./frame-cache";
import { envelopeFrame, type Frame } from "./frames";
import { Hub } from "./hub";
import { LiveTail } from "./live-tail";
import {
  type CloseOptions,
  type ErrorContext,
  type ResolvedOptions,
  resolveDrainMs,
  resolveOptions,
  type SseRouterOptions,
} from "./options";
import { awaitTurn } from "./pipelining";
import { RunTags } from "./run-tags";
import { type Envelope, EVENT_TYPE_PATTERN, isValidRunId, type RunEvent, type RunState } from "./schema";
import { compareEnvelopeIds, type LiveGap, type RunEventSource, type SourceLag } from "./source";
import { type Checked, sourceCheck, validateEnvelope } from "./source-check";
import {
  type LogReader,
  type StartContext,
  type StartOutcome,
  type StartRequest,
  type StreamStart,
  startGlobal,
  startRun,
} from "./start";
import { type EndReason, type ReplaySizeStats, RouterCounters } from "./stats";
import { MAX_TIMER_MS, type Settled, settleWithin } from "./timeout";
import { type TokenProblem, tokenOf, type VerifiedToken, verifyStreamToken } from "./tokens";
import { nextTurn } from "./turns";
import { checkScope, parseFilter, type StreamScope, View } from "./view";

/** Counters of a router, since it was created, and its clients now. */
export interface SseRouterStats {
  /** Clients connected now, both streams. */
  clients: number;
  /** Clients connected now, by stream: per-run streams (`run`) and the global stream. */
  clientsByStream: { run: number; global: number };
  /** Frames written to clients (one frame to ten clients counts ten). Heartbeats and `retry:` are not frames. */
  framesSent: number;
  /** Bytes of frames written to clients. */
  bytesSent: number;
  /** Clients disconnected because their backlog passed `maxBufferedBytes` (also in `clientsEnded.slow`). */
  slowClientsCutOff: number;
  /** Streams the server ended, by why (see {@link EndReason}); a client's own disconnects are not counted. */
  clientsEnded: Record<EndReason, number>;
  /**
   * Streams started, by how they began: `fresh` (no resume asked), `replayed` (a resume or
   * `?from=start` served exactly from the log), `resync` (a resume that could not be: `resync` frame and snapshot).
   */
  streamStarts: Record<StartOutcome, number>;
  /** Frames each `replayed` start wrote from the log, as histogram buckets. */
  replaySizes: ReplaySizeStats;
  /**
   * The router's memory of each run's newest frames (option `resumeCacheBytes`): what it holds
   * now, and how many resumes (either stream) began from it rather than from the source's log.
   */
  resumeCache: { frames: number; bytes: number; hits: number };
  /** Envelopes rejected by validation (never broadcast), live or read from the source. */
  invalidEnvelopes: number;
  /** Source reads that threw, rejected or outlasted `sourceTimeoutMs` (the requests got 500 or 503, or the streams ended to be resumed). */
  sourceErrors: number;
  /** Runs with at least one watcher (each has its own channel). */
  channels: number;
  /**
   * Distinct views (scope ∩ filters) of global clients, besides the unfiltered one: clients
   * with the same view share one channel and one chunk per tick.
   */
  views: number;
  /**
   * How far the source's live delivery is behind, as it last reported (see
   * `RunEventSource.lag`). Present only when the source reports lag; `{}` while it has not
   * measured yet.
   */
  sourceLag?: SourceLag;
}

/**
 * What `sseRouter` returns: an Express router serving both streams, plus control of them.
 * `State` and `Event` are the source's types of run states and events (see `RunEventSource`).
 */
export interface SseRouter<State extends RunState = RunState, Event extends RunEvent = RunEvent> extends Router {
  /** The per-run stream alone (`{basePath}/runs/:id/stream`), to mount or guard separately. */
  readonly runs: Router;
  /** The global stream alone (`{basePath}/stream`), to mount or guard separately. */
  readonly global: Router;
  /** Clients on one run's stream; with no argument, every client of both streams. */
  clientCount(runId?: string): number;
  /** Pushes an envelope as if the source had announced it (its run's watchers and the global stream). Throws `invalid_envelope`. */
  broadcast(envelope: Envelope<State, Event>): void;
  /**
   * Pushes an envelope to every connected client of both streams, whatever its scope or
   * filters: the one way to reach clients outside a run's scope (announcements). Throws
   * `invalid_envelope`.
   */
  broadcastAll(envelope: Envelope<State, Event>): void;
  /** Counters since the router was created. */
  stats(): SseRouterStats;
  /**
   * Ends every stream, unsubscribes from the source and stops the timers. New requests get
   * 503 `unavailable` from the call on. With `drainMs`, the streams end spread over that
   * window (the others stream on meanwhile) and the promise resolves after the last one; a
   * later `close()` without `drainMs` ends the rest at once. Rejects with `invalid_option`
   * for a `drainMs` that is not a non-negative integer; never rejects otherwise: a stream that
   * fails to end is destroyed and reported to `onError` (phase `close`).
   */
  close(options?: CloseOptions): Promise<void>;
}

/** Headers of every stream response. */
const STREAM_HEADERS: Record<string, string> = {
  "Content-Type": "text/event-stream",
  "Cache-Control": "no-cache, no-transform",
  "X-Accel-Buffering": "no",
};

function sendError(
  res: ServerResponse,
  status: number,
  code: RuncastErrorCode,
  message: string,
  headers: Record<string, string> = {},
): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = JSON.stringify({ error: { code, message } });
  res.writeHead(status, {
    ...headers,
    "Content-Type": "application/json; charset=utf-8",
    "Content-Length": Buffer.byteLength(body),
  });
  res.end(body);
}

/** The request's path and its query string (without `?`), split once. */
function splitUrl(req: IncomingMessage): [path: string, search: string] {
  const url = req.url ?? "";
  const q = url.indexOf("?");
  return q < 0 ? [url, ""] : [url.slice(0, q), url.slice(q + 1)];
}

/** `?types=a,b` as a set, `null` when absent, or an error message. */
function parseTypes(query: URLSearchParams): ReadonlySet<string> | null | string {
  const raw = query.getAll("types");
  if (raw.length === 0) return null;
  const types = raw
    .flatMap((value) => value.split(","))
    .map((type) => type.trim())
    .filter((type) => type !== "");
  const bad = types.find((type) => !EVENT_TYPE_PATTERN.test(type));
  if (bad !== undefined)
    return `invalid event type ${JSON.stringify(bad)} in types: use dotted lowercase names such as unit.started`;
  return types.length === 0 ? null : new Set(types);
}

/**
 * The resume point: the `Last-Event-ID` header, or the `lastEventId` query parameter (for
 * polyfills), as sent. One that is not a valid envelope id is answered with a `resync` and a
 * fresh snapshot rather than an error that would stop the client's reconnects.
 */
function lastEventIdOf(req: IncomingMessage, query: URLSearchParams): string | undefined {
  const header = req.headers["last-event-id"];
  const value = (typeof header === "string" && header !== "" ? header : undefined) ?? query.get("lastEventId");
  return value === null || value === "" ? undefined : value;
}

/** `?from=start` as a flag, or an error message: any other value, and `from` on the global stream, are refused. */
function parseFrom(query: URLSearchParams, runId: string | null): boolean | string {
  const values = query.getAll("from");
  if (values.length === 0) return false;
  if (runId === null) return "from is not supported on the global stream: it has no beginning to start from";
  if (values.length > 1 || values[0] !== "start") {
    return `invalid from ${JSON.stringify(values.join(","))}: the only value is "start"`;
  }
  return true;
}

/** The run an envelope names, for reports; never throws, whatever the value. */
function runIdOf(envelope: unknown): string | undefined {
  try {
    const runId = (envelope as { runId?: unknown } | null)?.runId;
    return typeof runId === "string" ? runId : undefined;
  } catch {
    return undefined;
  }
}

const TOKEN_MESSAGES: Record<TokenProblem, string> = {
  invalid_token: "a valid stream token is required (?token= or Authorization: Bearer)",
  token_expired: "the stream token has expired: fetch a new one",
};

/** What a request may see, once its token and `authorize` answered: a refusal, or its scopes. */
type Access = { refused: true } | { refused: false; scopes: StreamScope[]; expiresAt: number | undefined };

/** `?heartbeat=event` as a flag, or an error message for any other value. */
function parseHeartbeat(query: URLSearchParams): boolean | string {
  const values = query.getAll("heartbeat");
  if (values.length === 0) return false;
  if (values.length > 1 || values[0] !== "event") {
    return `invalid heartbeat ${JSON.stringify(values.join(","))}: the only value is "event"`;
  }
  return true;
}

/** A source's lag report, kept only where it holds non-negative finite numbers. */
function checkedLag(lag: unknown): SourceLag {
  const out: SourceLag = {};
  if (typeof lag !== "object" || lag === null) return out;
  const { entries, ms } = lag as { entries?: unknown; ms?: unknown };
  if (typeof entries === "number" && Number.isFinite(entries) && entries >= 0) out.entries = entries;
  if (typeof ms === "number" && Number.isFinite(ms) && ms >= 0) out.ms = ms;
  return out;
}

/** Everything one `sseRouter` owns. */
class Streams {
  readonly options: ResolvedOptions;
  readonly hub: Hub;
  readonly ctx: StartContext;
  /**
   * Frames by id of log entries read, and of live envelopes the tail does not hold, shared by
   * every replay of the same entries.
   */
  readonly frames = new FrameCache();
  /** Runs' newest frames as the source delivered them: resumes from an id held there read no log. */
  readonly tail: LiveTail;
  /** Runs' tags, learnt from their states (events carry none), for placing frames in views. */
  readonly tags: RunTags;
  /** Live frames held, in order, behind one whose run's tags are being looked up. */
  #held: Frame[] = [];
  readonly counters = new RouterCounters();
  /** Set by `close()`: new requests are refused. */
  closed = false;
  /** Set once unsubscribed from the source. */
  #stopped = false;
  #closing: Promise<void> | undefined;
  readonly #unsubscribe: () => void;

  constructor(
    readonly source: RunEventSource,
    options: ResolvedOptions,
  ) {
    this.options = options;
    const compareIds = source.compareIds?.bind(source) ?? compareEnvelopeIds;
    this.hub = new Hub({
      heartbeatMs: options.heartbeatMs,
      retryMs: options.retryMs,
      maxBufferedBytes: options.maxBufferedBytes,
      maxStreamMs: options.maxStreamMs,
      coalesceMs: options.coalesceMs,
      compareIds,
      onEnded: (reason) => {
        this.counters.ended[reason]++;
      },
      headers: STREAM_HEADERS,
      onFault: (error, client) => this.report(error, { phase: "delivery", runId: client.runId ?? undefined }),
    });
    this.tags = new RunTags(source, (error, context) => this.report(error, context));
    this.tail = new LiveTail(compareIds, options.resumeCacheBytes);
    this.ctx = {
      source,
      frames: this.frames,
      tail: this.tail,
      reject: (error, context) => this.reject(error, context),
      tags: this.tags,
      check: sourceCheck(source),
    };
    this.#unsubscribe = source.subscribe(
      (envelope) => this.accept(envelope),
      (gap) => this.gap(gap),
    );
  }

  /** The source lost live continuity: reported, and the streams concerned end so their clients resume. */
  gap(gap: LiveGap): void {
    // Not `closed`: streams still draining must resume past the gap too.
    if (this.#stopped) return;
    const runId = typeof gap?.runId === "string" ? gap.runId : undefined;
    const what = runId === undefined ? "every stream" : `the streams of run ${runId}`;
    this.report(
      new Error(
        `the source lost live continuity (${String(gap?.reason)}): ${String(gap?.message)}; ending ${what} so their clients resume`,
      ),
      { phase: "gap", runId },
    );
    // What is held of the runs concerned no longer continues into their logs.
    this.tail.clear(runId);
    this.hub.endStreams(runId);
  }

  reject(error: unknown, context: ErrorContext): void {
    this.counters.invalidEnvelopes++;
    this.report(error, context);
  }

  report(error: unknown, context: ErrorContext): void {
    try {
      this.options.onError(error, context);
    } catch {
      // An onError that throws must not take the stream down with it.
    }
  }

  /**
   * A live envelope from the source: validated and serialized, then fanned out. An invalid one
   * is dropped, counted and reported; nothing is thrown back into the source's emit call.
   */
  accept(envelope: unknown): void {
    // Not `closed`: streams draining after `close({ drainMs })` still get live envelopes.
    if (this.#stopped) return;
    let frame: Frame;
    try {
      frame = this.frame(envelope, this.ctx.check.envelope, "invalid envelope from the source");
    } catch (error) {
      this.reject(error, { phase: "envelope", runId: runIdOf(envelope), envelope });
      return;
    }
    // Frames held by the tail are found there by replays; only the others go to the cache.
    if (!this.tail.append(frame)) this.frames.set(frame);
    this.deliver(frame);
  }

  /**
   * Fans a frame out. Global views are by tag, and events do not carry their run's tags: a
   * frame of a run whose tags are not known yet waits for them to be looked up, and every
   * frame after it waits behind it, so no client sees frames out of order.
   */
  deliver(frame: Frame): void {
    // Views by tag exist only while such clients do: a frame published before one joined
    // reaches it through its snapshot or replay, which place frames themselves.
    if (this.#held.length === 0 && (!this.hub.needsTags || this.tags.get(frame.runId) !== undefined)) {
      this.hub.publish(frame, this.tags.get(frame.runId));
      return;
    }
    this.#held.push(frame);
    if (this.#held.length === 1) void this.#release();
  }

  async #release(): Promise<void> {
    while (this.#held.length > 0 && !this.closed) {
      const head = this.#held[0] as Frame;
      // A lookup that fails or finds no run leaves the tags unknown: the run is in no view by tag.
      if (this.hub.needsTags && this.tags.get(head.runId) === undefined) await this.tags.resolve([head.runId]);
      this.hub.publish(head, this.tags.get(head.runId));
      this.#held.shift();
      while (
        this.#held.length > 0 &&
        (!this.hub.needsTags || this.tags.get((this.#held[0] as Frame).runId) !== undefined)
      ) {
        const next = this.#held.shift() as Frame;
        this.hub.publish(next, this.tags.get(next.runId));
      }
    }
    if (this.closed) this.#held = [];
  }

  /** Keeps a frame for the replays that will want it, and hands it back. */
  cached(frame: Frame): Frame {
    this.frames.set(frame);
    return frame;
  }

  /**
   * Checks an envelope (fully, unless `check` takes the source's values as validated already)
   * and renders its frame; throws `invalid_envelope`, also when its data throws while being
   * read or serialized (a `toJSON` of the adapter's own, say).
   */
  frame(
    envelope: unknown,
    check: (candidate: unknown) => Checked<Envelope> = validateEnvelope,
    what = "invalid envelope",
  ): Frame {
    try {
      const checked = check(envelope);
      if (!checked.ok) throw new RuncastError("invalid_envelope", `${what}: ${checked.problem}`);
      const frame = envelopeFrame(checked.value);
      // A state tells its run's tags (fixed for the run's life) for placing its events.
      if (checked.value.type !== "event") this.tags.learn(checked.value.data);
      return frame;
    } catch (error) {
      if (error instanceof RuncastError) throw error;
      throw new RuncastError("invalid_envelope", `${what}: it could not be serialized: ${String(error)}`, {
        cause: error,
      });
    }
  }

  /** Serves one stream request: the checks (400, 401, 403, 503, 404 in that order), then the stream. */
  async serve(req: Request, res: Response, runId: string | null, search: string): Promise<void> {
    // A request pipelined behind another is answered in its turn; its connection may close first.
    if (!(await awaitTurn(req, res))) return;
    const query = new URLSearchParams(search);
    if (runId !== null && !isValidRunId(runId)) {
      sendError(
        res,
        400,
        "invalid_run_id",
        `invalid run id ${JSON.stringify(runId)}: use 1 to 128 characters of [A-Za-z0-9._:-]`,
      );
      return;
    }
    const types = parseTypes(query);
    if (typeof types === "string") {
      sendError(res, 400, "invalid_query", types);
      return;
    }
    const fromStart = parseFrom(query, runId);
    if (typeof fromStart === "string") {
      sendError(res, 400, "invalid_query", fromStart);
      return;
    }
    const filter = parseFilter(query, runId);
    if (typeof filter === "string") {
      sendError(res, 400, "invalid_query", filter);
      return;
    }
    const heartbeatEvents = parseHeartbeat(query);
    if (typeof heartbeatEvents === "string") {
      sendError(res, 400, "invalid_query", heartbeatEvents);
      return;
    }
    const access = await this.access(req, res, runId, query);
    if (access === null) return;
    if (access.refused) {
      sendError(res, 403, "forbidden", "not allowed to watch this stream");
      return;
    }
    if (this.closed) {
      sendError(res, 503, "unavailable", "the stream server is shutting down");
      return;
    }
    if (this.hub.clientCount() >= this.options.maxClients) {
      sendError(res, 503, "too_many_clients", "too many clients are connected; retry later", this.retryAfter());
      return;
    }
    if (res.destroyed) return;

    const view = View.of(...access.scopes, filter);
    const client = this.hub.open(res, runId, types, view, heartbeatEvents);
    const request: StartRequest = { lastEventId: lastEventIdOf(req, query), fromStart };
    let started: Settled<StreamStart>;
    try {
      // Many connects arrive in one turn (a reconnect storm): each one's source reads wait their turn.
      await nextTurn();
      const starting = runId === null ? startGlobal(this.ctx, request, view) : startRun(this.ctx, runId, request);
      started = await settleWithin(starting, this.options.sourceTimeoutMs);
    } catch (error) {
      this.counters.sourceErrors++;
      this.report(error, { phase: "source", runId: runId ?? undefined });
      sendError(res, 500, "internal_error", "the stream could not be opened");
      return;
    }
    if (started.timedOut) {
      // Answering ends the response, and with it the client's place in the hub.
      this.counters.sourceErrors++;
      this.timedOut(res, "source", runId);
      return;
    }
    const start = started.value;
    if (client.closed) {
      if (!res.destroyed) sendError(res, 503, "unavailable", "the stream server is shutting down");
      return;
    }
    if (start.kind === "missing") {
      sendError(res, 404, "run_not_found", `run ${runId} does not exist`);
      return;
    }
    if (start.kind === "finished") {
      res.writeHead(204);
      res.end();
      return;
    }
    const { plan } = start;
    this.counters.starts[plan.outcome]++;
    if (plan.held === true) this.counters.heldResumes++;
    await this.hub.connect(client);
    if (access.expiresAt !== undefined) this.expireAt(res, access.expiresAt, () => client.end("token_expiry"));
    try {
      await client.start(plan.log === undefined ? plan : { ...plan, log: this.timedLog(plan.log) });
    } catch (error) {
      // A source read failing after the head went out: the client reconnects and resumes.
      this.counters.sourceErrors++;
      this.report(error, { phase: "replay", runId: runId ?? undefined });
      client.abort("error");
      res.destroy();
    }
    if (plan.outcome === "replayed") this.counters.observeReplay(client.startFrames);
  }

  /**
   * The token's verdict (401 problems), then `authorize`'s (403), as the scopes the client
   * sees through. A per-run stream outside them is refused here too, before the 503 and 404
   * checks: under a tag scope a run that does not exist is refused like one out of scope.
   * Answers `null` once it answered the request itself (401, 500, 503 on a timeout).
   */
  async access(req: Request, res: Response, runId: string | null, query: URLSearchParams): Promise<Access | null> {
    const scopes: StreamScope[] = [];
    let expiresAt: number | undefined;
    const key = this.options.tokenKey;
    if (key !== undefined) {
      const token = tokenOf(req.headers.authorization, query);
      const verified: VerifiedToken | TokenProblem =
        token === undefined ? "invalid_token" : await verifyStreamToken(key, token);
      if (typeof verified === "string") {
        sendError(res, 401, verified, TOKEN_MESSAGES[verified], { "WWW-Authenticate": "Bearer" });
        return null;
      }
      if (verified.scope !== undefined) scopes.push(verified.scope);
      expiresAt = verified.expiresAt;
    }
    if (this.options.authorize !== undefined) {
      let answer: Settled<unknown>;
      try {
        answer = await settleWithin(this.options.authorize(req, runId), this.options.sourceTimeoutMs);
      } catch (error) {
        this.report(error, { phase: "authorize", runId: runId ?? undefined });
        sendError(res, 500, "internal_error", "the stream could not be opened");
        return null;
      }
      if (answer.timedOut) {
        this.timedOut(res, "authorize", runId);
        return null;
      }
      const { value } = answer;
      // Anything but `true` or an object refuses, as before scopes existed (fail closed).
      if (value !== true && (value === null || typeof value !== "object")) return { refused: true };
      if (value !== true) {
        const scope = checkScope(value);
        if (scope === undefined) {
          this.report(
            new RuncastError(
              "invalid_option",
              "authorize answered neither true, false nor a scope { tags?, runs? } of valid tags and run ids",
            ),
            { phase: "authorize", runId: runId ?? undefined },
          );
          sendError(res, 500, "internal_error", "the stream could not be opened");
          return null;
        }
        scopes.push(scope);
      }
    }
    if (runId !== null && scopes.length > 0) {
      const view = View.of(...scopes);
      if (!view.listsRun(runId) && this.tags.get(runId) === undefined) {
        let state: Settled<unknown>;
        try {
          state = await settleWithin(this.source.getRun(runId), this.options.sourceTimeoutMs);
        } catch (error) {
          this.report(error, { phase: "source", runId });
          sendError(res, 500, "internal_error", "the stream could not be opened");
          return null;
        }
        if (state.timedOut) {
          this.timedOut(res, "source", runId);
          return null;
        }
        const found = state.value as { tags?: unknown } | undefined;
        if (found !== undefined && found !== null) this.tags.learnUnchecked(runId, found.tags);
      }
      // No such run: out of scope like any other, so its existence is not told.
      if (!view.listsRun(runId)) {
        const tags = this.tags.get(runId);
        if (tags === undefined || !view.includes(runId, tags)) return { refused: true };
      }
    }
    return { refused: false, scopes, expiresAt };
  }

  /** Ends a stream when its token expires: the client reconnects with a fresh token and resumes. */
  expireAt(res: Response, expiresAt: number, end: () => void): void {
    const wait = expiresAt - Date.now();
    const timer = setTimeout(
      () => (wait > MAX_TIMER_MS ? this.expireAt(res, expiresAt, end) : end()),
      Math.max(0, Math.min(wait, MAX_TIMER_MS)),
    );
    timer.unref();
    res.once("close", () => clearTimeout(timer));
  }

  /**
   * A log reader whose every read must answer within `sourceTimeoutMs`: the pages of a resume
   * are read after the head went out, so a read that hangs fails the stream (reported, the
   * client reconnects and resumes) rather than holding it for ever.
   */
  timedLog(read: LogReader): LogReader {
    const ms = this.options.sourceTimeoutMs;
    return async (after) => {
      const page = await settleWithin(read(after), ms);
      if (!page.timedOut) return page.value;
      throw new RuncastError("unavailable", `the source did not answer a log read within ${ms} ms (sourceTimeoutMs)`);
    };
  }

  /** `Retry-After` of a 503: `retryMs` in whole seconds, at least 1. */
  retryAfter(): Record<string, string> {
    return { "Retry-After": String(Math.max(1, Math.ceil(this.options.retryMs / 1000))) };
  }

  /** `authorize` or the source did not answer within `sourceTimeoutMs`: 503 for the client, the cause to `onError`. */
  timedOut(res: Response, phase: "authorize" | "source", runId: string | null): void {
    const what = phase === "authorize" ? "authorize" : "the source";
    const ms = this.options.sourceTimeoutMs;
    this.report(new RuncastError("unavailable", `${what} did not answer within ${ms} ms (sourceTimeoutMs)`), {
      phase,
      runId: runId ?? undefined,
    });
    if (!res.destroyed)
      sendError(res, 503, "unavailable", "the stream server could not answer in time; retry later", this.retryAfter());
  }

  /** See `SseRouter#close`. */
  close(drainMs: number): Promise<void> {
    if (this.#closing !== undefined) {
      // A second call without a window: whatever is still draining ends now.
      if (drainMs === 0) this.hub.hurry();
      return this.#closing;
    }
    this.closed = true;
    // Without a window nothing needs the source any more; a drain's streams still do.
    if (drainMs === 0) this.#stop();
    this.#closing = this.hub
      .close(drainMs, (error, client) => this.report(error, { phase: "close", runId: client.runId ?? undefined }))
      .then(() => this.#stop());
    return this.#closing;
  }

  #stop(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    try {
      this.#unsubscribe();
    } catch (error) {
      // The source's own unsubscribe failing must not leave the streams open.
      this.report(error, { phase: "close" });
    }
  }

  stats(): SseRouterStats {
    const { hub, counters } = this;
    const clients = hub.clientCount();
    const global = hub.globalClientCount;
    const stats: SseRouterStats = {
      clients,
      clientsByStream: { run: clients - global, global },
      ...hub.counters,
      slowClientsCutOff: counters.ended.slow,
      clientsEnded: { ...counters.ended },
      streamStarts: { ...counters.starts },
      replaySizes: counters.replaySizes(),
      resumeCache: { frames: this.tail.size, bytes: this.tail.chars, hits: counters.heldResumes },
      invalidEnvelopes: counters.invalidEnvelopes,
      sourceErrors: counters.sourceErrors,
      channels: hub.channelCount,
      views: hub.viewCount,
    };
    if (typeof this.source.lag === "function") {
      try {
        stats.sourceLag = checkedLag(this.source.lag());
      } catch (error) {
        stats.sourceLag = {};
        this.report(error, { phase: "source" });
      }
    }
    return stats;
  }
}

/**
 * Turns a run event source into Server-Sent Events: `GET {basePath}/runs/:id/stream` streams
 * one run, `GET {basePath}/stream` every run. Mount it with `app.use(sseRouter(source))`.
 *
 * The router takes its types of run states and events from the source (`State`, `Event`; the
 * built-in `RunState` and `RunEvent` by default), for `broadcast` and `broadcastAll`.
 *
 * @param source - The daemon's event source adapter, e.g. a {@link MemoryRunSource}.
 * @param options - See {@link SseRouterOptions}; checked now, throwing `invalid_option`.
 */
export function sseRouter<State extends RunState = RunState, Event extends RunEvent = RunEvent>(
  source: RunEventSource<State, Event>,
  options?: SseRouterOptions,
): SseRouter<State, Event> {
  const streams = new Streams(source, resolveOptions(options));
  const { basePath } = streams.options;
  const runPath = /^\/runs\/([^/]+)\/stream\/?$/;

  /**
   * The request's path below `basePath`, or `null` outside it. Mounted at a path that already
   * ends with `basePath` (`app.use("/api", guard, sse.runs)`), the router does not expect it a
   * second time; mounted anywhere else, `basePath` follows the mount path.
   */
  const belowBase = (req: Request, path: string): string | null => {
    if (basePath !== "" && req.baseUrl.endsWith(basePath)) return path;
    return path.startsWith(`${basePath}/`) ? path.slice(basePath.length) : null;
  };

  const handle = (req: Request, res: Response, runId: string | null, search: string): void => {
    streams.serve(req, res, runId, search).catch((error: unknown) => {
      streams.report(error, { phase: "source", runId: runId ?? undefined });
      sendError(res, 500, "internal_error", "the stream could not be opened");
    });
  };

  const runs = Router();
  runs.use((req, res, next) => {
    if (req.method !== "GET") return next();
    const [path, search] = splitUrl(req);
    const below = belowBase(req, path);
    const match = below === null ? null : runPath.exec(below);
    if (match === null) return next();
    let runId: string;
    try {
      runId = decodeURIComponent(match[1] ?? "");
    } catch {
      sendError(res, 400, "invalid_run_id", "the run id is not valid percent-encoding");
      return;
    }
    handle(req, res, runId, search);
  });

  const global = Router();
  global.use((req, res, next) => {
    if (req.method !== "GET") return next();
    const [path, search] = splitUrl(req);
    const below = belowBase(req, path);
    if (below !== "/stream" && below !== "/stream/") return next();
    handle(req, res, null, search);
  });

  const router = Router();
  router.use(runs, global);
  return Object.assign(router, {
    runs,
    global,
    clientCount: (runId?: string) => streams.hub.clientCount(runId),
    broadcast: (envelope: Envelope) => streams.deliver(streams.cached(streams.frame(envelope))),
    broadcastAll: (envelope: Envelope) => streams.hub.publishAll(streams.cached(streams.frame(envelope))),
    stats: (): SseRouterStats => streams.stats(),
    close: (options?: CloseOptions): Promise<void> => {
      let drainMs: number;
      try {
        drainMs = resolveDrainMs(options);
      } catch (error) {
        return Promise.reject(error);
      }
      return streams.close(drainMs);
    },
  }) as SseRouter<State, Event>;
}
