import { ServerResponse } from "node:http";
import type { Socket } from "node:net";
import type { Session } from "better-sse";
import type { ResponseConnection } from "./connection";
import { type Frame, type FrameBatch, HEARTBEAT, HEARTBEAT_CHUNK, httpChunk } from "./frames";
import type { StreamPlan } from "./start";
import type { EndReason } from "./stats";
import { nextTurn } from "./turns";
import type { View } from "./view";

/** The most bytes a starting stream writes before it waits for its socket to drain. */
const START_PIECE_BYTES = 64 * 1024;

/** What a client's better-sse session carries in its `state`. */
export interface ClientSessionState {
  client: Client;
}

/** Callbacks through which a client reports to its hub. */
export interface ClientHooks {
  /** The server ended the client's stream (counted once per stream). */
  onEnded(reason: EndReason): void;
  /**
   * Adapter code run for this client threw (a custom `compareIds`); the client has been
   * disconnected, and nothing else is affected.
   */
  onFault(client: Client, error: unknown): void;
  /** Frames and bytes were handed to the socket. */
  onSent(frames: number, bytes: number): void;
  /** The client stopped queueing: from now on its channel writes to it directly. */
  onLive(client: Client): void;
}

/** Settings every client of a hub shares (one object per hub, not per client). */
export interface ClientSettings {
  maxBufferedBytes: number;
  /** How long a starting stream waits for its socket to drain before the client counts as not reading, in ms. */
  stallMs: number;
  compareIds: (a: string, b: string) => number;
  /** The heartbeat frame of `?heartbeat=event` streams, as SSE text and as an HTTP/1.1 chunk. */
  heartbeatEvent: { text: string; chunk: string };
  hooks: ClientHooks;
}

/**
 * The socket under `res` when pre-framed HTTP/1.1 chunks written straight to it are
 * byte-for-byte what `res.write` would send, else `null` (then `res.write` it is). That
 * holds when the head is out, the response uses chunked transfer encoding (not HTTP/1.0,
 * not a set Content-Length), no other middleware set a content encoding or wrapped
 * `res.write` (compression), and `res` buffers nothing of its own that a socket write
 * would overtake. Writing to the socket skips `res.write`'s per-call framing and
 * bookkeeping, and the per-response hidden class Express gives every response.
 */
function directSocket(res: ServerResponse): Socket | null {
  const socket = res.socket;
  if (socket === null || socket.destroyed || !res.headersSent || !res.chunkedEncoding) return null;
  if (res.write !== ServerResponse.prototype.write || res.getHeader("content-encoding") !== undefined) return null;
  // Sends the head if `writeHead` was called but nothing written yet, and hands the socket
  // anything `res` still holds; after that only the socket has unsent bytes.
  res.flushHeaders();
  return res.writableLength === socket.writableLength ? socket : null;
}

/**
 * Lets go of the Express router chain a live stream's request still points to. Each router
 * level leaves its `next` closure on `req.next`, and through it the closures and contexts of
 * every level above (about 2 KB a connection). A stream never hands its request back to
 * Express, and nothing else calls `req.next` once the response is streaming, so it is
 * cleared, only where a router set it (a plain `node:http` request has no `next`).
 */
function releaseRouterChain(res: ServerResponse): void {
  const req = res.req as (typeof res.req & { next?: unknown }) | undefined;
  if (req !== undefined && Object.hasOwn(req, "next")) req.next = undefined;
}

/**
 * One SSE client's connection: where its frames are written, the queue that holds live
 * frames while its snapshot or replay is being written, the filter of `?types=`, and the
 * check that cuts it off when it stops reading.
 *
 * A client starts connecting (frames are queued), then `start` writes what it missed and
 * its queue, and from then on the hub writes to it directly.
 */
export class Client {
  readonly runId: string | null;
  readonly types: ReadonlySet<string> | null;
  /** The runs a global client sees (its channel's view). */
  readonly view: View;
  readonly res: ServerResponse;
  /** better-sse session, set once the response head went out. */
  session: Session<ClientSessionState> | undefined;
  /** The session's connection, told when the response closes. */
  connection: ResponseConnection | undefined;
  /** True once the response is finished or the socket is gone: nothing more is written. */
  closed = false;
  /** True once the client left its hub (its response closed). */
  left = false;
  /** Frames written while the stream started (its snapshot or replay), for the replay size counters. */
  startFrames = 0;
  /** `?heartbeat=event`: heartbeats go out as `heartbeat` frames instead of comments. */
  readonly heartbeatEvents: boolean;
  /** Ends the stream when its share of `maxStreamMs` is up. */
  #expiry: NodeJS.Timeout | undefined;
  readonly #options: ClientSettings;
  /** Live frames received while connecting; `null` once live. */
  #queue: Frame[] | null = [];
  #queuedBytes = 0;
  /** Drop frames with ids up to this one: they are already in the snapshot or replay written. */
  #skipThrough: string | undefined;
  /** While reading a log: live frames were dropped from the queue, so the log must be read on to catch up. */
  #requeued = false;
  /** While reading a log: the queue may be dropped instead of cutting the client off (the log holds its frames). */
  #rereadable = false;
  /** Set once live when pre-framed chunks can go straight to the socket (see `directSocket`). */
  #socket: Socket | null = null;

  /**
   * @param runId - The run watched, or `null` for the global stream.
   * @param types - Event types kept by `?types=`, or `null` for all.
   * @param view - The runs a global client sees (its frames arrive filtered by its channel).
   * @param heartbeatEvents - Heartbeats as `heartbeat` frames (`?heartbeat=event`) rather than comments.
   */
  constructor(
    res: ServerResponse,
    runId: string | null,
    types: ReadonlySet<string> | null,
    settings: ClientSettings,
    view: View,
    heartbeatEvents = false,
  ) {
    this.res = res;
    this.runId = runId;
    this.types = types;
    this.view = view;
    this.#options = settings;
    this.heartbeatEvents = heartbeatEvents;
  }

  /** Whether this client takes a tick's shared chunk as it is (no filter, no skip, not connecting). */
  get takesSharedChunk(): boolean {
    return this.#queue === null && this.types === null && this.#skipThrough === undefined;
  }

  /** Whether this client is still connecting (its live frames are queued). */
  get connecting(): boolean {
    return this.#queue !== null;
  }

  /**
   * Bytes written to this client that its socket has not sent yet. On the socket path that is
   * the socket's own count: `res.write`'s return value, `writableNeedDrain` and `drain` of
   * the response do not see writes made to its socket.
   */
  get backlog(): number {
    return this.#socket !== null ? this.#socket.writableLength : this.res.writableLength;
  }

  /** Writes raw SSE text. */
  write(text: string): void {
    if (this.closed || text.length === 0) return;
    if (this.#socket !== null) this.#socket.write(httpChunk(text, Buffer.byteLength(text)));
    else this.res.write(text);
  }

  /** Delivers one tick's frames of its channel. */
  receive(batch: FrameBatch): void {
    if (this.closed) return;
    if (this.#queue !== null) {
      for (const frame of batch.frames) {
        this.#queue.push(frame);
        this.#queuedBytes += frame.text.length;
      }
      if (this.#queuedBytes > this.#options.maxBufferedBytes) {
        if (!this.#rereadable) {
          this.cutOff();
          return;
        }
        // Everything queued is in the log being read: read on instead of holding it.
        this.#queue = [];
        this.#queuedBytes = 0;
        this.#requeued = true;
      }
      return;
    }
    // Judged before writing: what is still unsent now is what the client failed to drain
    // since the previous tick, not this tick's burst.
    if (this.backlog > this.#options.maxBufferedBytes) {
      this.cutOff();
      return;
    }
    if (this.takesSharedChunk) {
      if (this.#socket !== null) this.#socket.write(batch.httpChunk);
      else this.res.write(batch.chunk);
      this.#options.hooks.onSent(batch.frames.length, batch.bytes);
    } else {
      this.#writeSelected(batch.frames);
    }
    if (batch.ends) this.end("complete");
  }

  /** Sends a heartbeat (comment, or frame for `?heartbeat=event`), unless the client is connecting or too far behind. */
  heartbeat(): void {
    if (this.closed || this.#queue !== null) return;
    if (this.backlog > this.#options.maxBufferedBytes) {
      this.cutOff();
      return;
    }
    if (this.heartbeatEvents) {
      const { text, chunk } = this.#options.heartbeatEvent;
      if (this.#socket !== null) this.#socket.write(chunk);
      else this.res.write(text);
    } else if (this.#socket !== null) this.#socket.write(HEARTBEAT_CHUNK);
    else this.res.write(HEARTBEAT);
  }

  /** Ends the stream gracefully after `ms` (its share of `maxStreamMs`); the client resumes. */
  expireAfter(ms: number): void {
    if (this.closed) return;
    this.#expiry = setTimeout(() => {
      this.#expiry = undefined;
      void this.shutdown("max_duration");
    }, ms);
    // A stream's deadline alone must not keep the process alive.
    this.#expiry.unref();
  }

  /**
   * Goes live: writes the plan (the snapshot, or the log from the resume point, page by page
   * with the socket drained in between), then the frames queued meanwhile, skipping those at
   * or before the plan's cursor. Ends the response when the run's `complete` was among them.
   * Resolves once live (or closed).
   */
  async start(plan: StreamPlan): Promise<void> {
    let cursor = plan.cursor;
    this.#rereadable = plan.log !== undefined;
    if (await this.#writeStart(plan.head)) return;
    if (plan.pieces !== undefined) {
      for (let piece = plan.pieces.next(); piece.done !== true; piece = plan.pieces.next()) {
        await nextTurn();
        if (this.closed || (await this.#writeStart(piece.value))) return;
      }
    }
    let more = plan.more;
    while (plan.log !== undefined && cursor !== undefined && (more || this.#requeued) && !this.closed) {
      this.#requeued = false;
      await nextTurn();
      const read = await plan.log(cursor);
      if (this.closed) return;
      if (typeof read === "string") {
        // The log moved on under this client (trimmed, or the run forgotten): it reconnects
        // and its resume gets a `resync` or a 404.
        this.end("gap");
        return;
      }
      if (await this.#writeStart(read.frames)) return;
      cursor = read.last ?? cursor;
      more = read.full;
    }
    if (this.closed) return;
    this.#rereadable = false;
    this.#skipThrough = cursor;
    const queued = this.#queue ?? [];
    this.#queue = null;
    this.#queuedBytes = 0;
    this.#writeSelected(queued);
    if (queued.some((frame) => this.#ends(frame))) {
      this.end("complete");
      return;
    }
    if (!this.closed) {
      this.#socket = directSocket(this.res);
      releaseRouterChain(this.res);
    }
    this.#options.hooks.onLive(this);
  }

  /**
   * Writes frames of the stream's start in pieces, waiting for the socket to drain after
   * each, so a fast client is never cut off by its own replay and one that stops reading
   * holds little: it is cut off when its socket does not drain within `stallMs`. Answers
   * whether the stream ended (the run's `complete` was written, or the client is gone).
   */
  async #writeStart(frames: readonly Frame[]): Promise<boolean> {
    const piece = Math.max(1, Math.min(START_PIECE_BYTES, this.#options.maxBufferedBytes >> 1));
    let from = 0;
    let size = 0;
    for (let i = 0; i < frames.length && !this.closed; i++) {
      size += (frames[i] as Frame).text.length;
      if (size >= piece || i === frames.length - 1) {
        this.startFrames += this.#writeSelected(frames.slice(from, i + 1));
        from = i + 1;
        size = 0;
        if (this.backlog >= piece) {
          if (!(await this.#drained())) this.cutOff();
          // Drains arrive for many clients in one turn: the next piece waits its turn.
          else if (i < frames.length - 1) await nextTurn();
        }
      }
    }
    if (this.closed) return true;
    if (frames.some((frame) => this.#ends(frame))) {
      this.end("complete");
      return true;
    }
    return false;
  }

  /** Finishes the response normally (the run completed, or the stream has to be resumed elsewhere). */
  end(reason: EndReason): void {
    if (this.closed) return;
    this.#ended(reason);
    this.res.end();
  }

  /**
   * Ends the response and its connection (the router is closing): gracefully when everything
   * was sent, at once when the client is not reading. Resolves once the response is closed;
   * when ending it threw (a middleware's wrapper of `res.end`), it is destroyed instead and the
   * promise rejects with that error once it is closed. A client whose response has not started is only marked closed: its request handler
   * answers it with `unavailable`.
   */
  shutdown(reason: EndReason = "drain"): Promise<void> {
    if (!this.closed && this.res.headersSent) this.#ended(reason);
    this.closed = true;
    this.#clearExpiry();
    this.#queue = null;
    // Without a socket (finished, or never given one) no `close` is coming: nothing to wait for.
    if (!this.res.headersSent || this.res.destroyed || this.res.socket === null) return Promise.resolve();
    const done = new Promise<void>((resolve) => this.res.once("close", () => resolve()));
    if (this.backlog > 0) {
      this.res.destroy();
      return done;
    }
    // No callback to `end`: middleware that wraps it (express-session) takes a function for a body.
    this.res.once("finish", () => this.res.socket?.end());
    try {
      this.res.end();
    } catch (error) {
      // Whatever a wrapper of `res.end` threw, the stream still ends; the caller reports the error.
      this.res.destroy();
      return done.then(() => Promise.reject(error));
    }
    return done;
  }

  /** Disconnects a client that fell too far behind; it will reconnect and replay. */
  cutOff(): void {
    this.abort("slow");
  }

  /** Ends the stream at once, the socket destroyed (a slow client, a failed source read). */
  abort(reason: EndReason): void {
    if (this.closed) return;
    this.#ended(reason);
    this.res.destroy();
  }

  /** Disconnects a client that adapter code failed for (see `ClientHooks.onFault`). */
  fail(error: unknown): void {
    if (this.closed) return;
    if (this.res.headersSent) this.#options.hooks.onEnded("error");
    this.markClosed();
    this.res.destroy();
    this.#options.hooks.onFault(this, error);
  }

  /** Marks the client gone (its socket closed). */
  markClosed(): void {
    this.closed = true;
    this.#queue = null;
    this.#clearExpiry();
  }

  /** The server ends this stream: counted once, and nothing more is written. */
  #ended(reason: EndReason): void {
    this.closed = true;
    this.#clearExpiry();
    this.#options.hooks.onEnded(reason);
  }

  #clearExpiry(): void {
    if (this.#expiry === undefined) return;
    clearTimeout(this.#expiry);
    this.#expiry = undefined;
  }

  #ends(frame: Frame): boolean {
    return frame.type === "complete" && frame.runId === this.runId;
  }

  /** Writes the frames this client wants: its `types` filter, minus what its snapshot already held. Answers how many. */
  #writeSelected(frames: readonly Frame[]): number {
    if (this.closed || frames.length === 0) return 0;
    let text = "";
    let count = 0;
    for (const frame of frames) {
      if (this.#skipThrough !== undefined && frame.id !== undefined) {
        let order: number;
        try {
          order = this.#options.compareIds(frame.id, this.#skipThrough);
        } catch (error) {
          // The adapter's own code, which may throw on an id it cannot parse: this client only is lost.
          this.fail(error);
          return 0;
        }
        if (order <= 0) continue;
        this.#skipThrough = undefined;
      }
      if (this.types !== null && frame.type === "event" && !this.types.has(frame.eventType ?? "")) continue;
      text += frame.text;
      count++;
    }
    if (count === 0) return 0;
    const bytes = Buffer.byteLength(text);
    if (this.#socket !== null) this.#socket.write(httpChunk(text, bytes));
    else this.res.write(text);
    this.#options.hooks.onSent(count, bytes);
    return count;
  }

  /** Resolves `true` once the response drained (or closed), `false` when `stallMs` passed first. */
  #drained(): Promise<boolean> {
    return new Promise((resolve) => {
      const done = (drained: boolean): void => {
        clearTimeout(timer);
        this.res.off("drain", onDrain);
        this.res.off("close", onDrain);
        resolve(drained);
      };
      const onDrain = (): void => done(true);
      const timer = setTimeout(() => done(false), this.#options.stallMs);
      this.res.on("drain", onDrain);
      this.res.on("close", onDrain);
    });
  }
}
