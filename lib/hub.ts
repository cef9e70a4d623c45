import type { ServerResponse } from "node:http";
import { performance } from "node:perf_hooks";
import { Channel, Session } from "better-sse";
import { ResponseConnection } from "./connection";
import { Drain } from "./drain";
import { type Frame, type FrameBatch, heartbeatEvent, httpChunk, joinFrames, retryField } from "./frames";
import { jitteredRetryMs, streamLifetimeMs } from "./jitter";
import type { EndReason } from "./stats";
import { View } from "./view";
import { Client, type ClientSessionState, type ClientSettings } from "./wire";

/** Counters a hub keeps; see `SseRouter#stats`. */
export interface HubCounters {
  framesSent: number;
  bytesSent: number;
}

/** Settings of a {@link Hub}. */
export interface HubOptions {
  heartbeatMs: number;
  retryMs: number;
  maxBufferedBytes: number;
  /** Each stream ends after a jittered share of this many ms; `undefined`: streams last. */
  maxStreamMs: number | undefined;
  compareIds: (a: string, b: string) => number;
  /** Told of every stream the server ends, with why. */
  onEnded: (reason: EndReason) => void;
  /** Response headers of every stream. */
  headers: Record<string, string>;
  /**
   * Told when delivering frames to one client threw (adapter code it runs, such as a custom
   * `compareIds`): that client has been disconnected, every other one is still served.
   */
  onFault: (error: unknown, client: Client) => void;
  /** Least ms between two writes of live frames (see `SseRouterOptions.coalesceMs`); 0: every turn. */
  coalesceMs: number;
}

/**
 * A run's channel, or a global one (`runId` null, one per view: clients that see the same
 * runs share it): a better-sse channel of live sessions plus the clients still connecting.
 */
interface HubChannel {
  readonly runId: string | null;
  /** What the global channel's clients see; every run for a run's channel. */
  readonly view: View;
  readonly sse: Channel<Record<string, never>, ClientSessionState>;
  readonly connecting: Set<Client>;
  /** Frames published this tick, not yet written. */
  pending: Frame[];
  /** The publish that last considered this channel: each is considered once per frame. */
  seen: number;
}

/**
 * The fan-out: one better-sse channel per watched run plus one global channel per view
 * (scope ∩ filters) someone watches, fed with frames serialized once. Frames published within
 * one event-loop tick (or, with `coalesceMs`, one window) are joined into one chunk per channel
 * and written to each client in a single write, so filtered clients cost no more per tick
 * than unfiltered ones. One heartbeat
 * timer serves every client. A run's or view's channel exists while someone watches it.
 */
export class Hub {
  readonly counters: HubCounters = { framesSent: 0, bytesSent: 0 };
  readonly #options: HubOptions;
  readonly #runs = new Map<string, HubChannel>();
  /** Global channels by view key; `""` (every run) always exists. */
  readonly #views = new Map<string, HubChannel>([["", Hub.#channel(null, View.ALL)]]);
  /** Global channels other than every run's, by a run id or tag of their view's anchor (see `View.anchor`). */
  readonly #byRun = new Map<string, Set<HubChannel>>();
  readonly #byTag = new Map<string, Set<HubChannel>>();
  #publishes = 0;
  readonly #dirty: HubChannel[] = [];
  /** The scheduled write of pending frames: at the end of this turn, or when `coalesceMs` allows. */
  #flushing: { immediate: NodeJS.Immediate } | { timeout: NodeJS.Timeout } | undefined;
  /** When pending frames were last written (`performance.now()`). */
  #flushedAt = Number.NEGATIVE_INFINITY;
  /** Characters of frame text pending, over every channel. */
  #pendingChars = 0;
  #heartbeat: NodeJS.Timeout | undefined;
  #clients = 0;
  /** Global channels whose view goes by tags. */
  #tagViews = 0;
  /** Set while `close({ drainMs })` ends the streams one by one. */
  #drain: Drain<Client> | undefined;
  readonly #hooks = {
    onEnded: (reason: EndReason): void => this.#options.onEnded(reason),
    onFault: (client: Client, error: unknown): void => {
      this.#options.onFault(error, client);
    },
    onSent: (frames: number, bytes: number): void => {
      this.counters.framesSent += frames;
      this.counters.bytesSent += bytes;
    },
    onLive: (client: Client): void => {
      const channel = this.#channelOf(client);
      if (channel === undefined || client.session === undefined || !channel.connecting.delete(client)) return;
      // The channel deregisters the session itself on `disconnected`, which consumes the listener it added.
      channel.sse.register(client.session);
    },
  };

  readonly #clientSettings: ClientSettings;

  constructor(options: HubOptions) {
    this.#options = options;
    this.#clientSettings = {
      maxBufferedBytes: options.maxBufferedBytes,
      // A starting stream that cannot drain for a heartbeat period is not reading.
      stallMs: options.heartbeatMs,
      compareIds: options.compareIds,
      heartbeatEvent: (() => {
        const text = heartbeatEvent(options.heartbeatMs);
        return { text, chunk: httpChunk(text, Buffer.byteLength(text)) };
      })(),
      hooks: this.#hooks,
    };
    this.#heartbeat = setInterval(() => this.#beat(), options.heartbeatMs);
    this.#heartbeat.unref();
  }

  static #channel(runId: string | null, view: View): HubChannel {
    return { runId, view, sse: new Channel(), connecting: new Set(), pending: [], seen: 0 };
  }

  #channelOf(client: Client): HubChannel | undefined {
    return client.runId === null ? this.#views.get(client.view.key) : this.#runs.get(client.runId);
  }

  /** Clients of one run's stream, or of both streams together. */
  clientCount(runId?: string): number {
    if (runId === undefined) return this.#clients;
    const channel = this.#runs.get(runId);
    return channel === undefined ? 0 : channel.sse.sessionCount + channel.connecting.size;
  }

  /** Whether some global client's view goes by tags: only then must a frame's run's tags be known to publish it. */
  get needsTags(): boolean {
    return this.#tagViews > 0;
  }

  /** Number of global views with clients besides the view of every run (each has its own channel). */
  get viewCount(): number {
    return this.#views.size - 1;
  }

  /** Clients of the global stream, every view (the rest watch one run each). */
  get globalClientCount(): number {
    let count = 0;
    for (const view of this.#views.values()) count += view.sse.sessionCount + view.connecting.size;
    return count;
  }

  /** Number of run channels alive (runs someone watches). */
  get channelCount(): number {
    return this.#runs.size;
  }

  /**
   * Accepts a client: from now on its channel's frames are queued for it, so nothing is lost
   * while its snapshot or replay is read. The client leaves the hub when its response closes.
   */
  open(
    res: ServerResponse,
    runId: string | null,
    types: ReadonlySet<string> | null,
    view: View = View.ALL,
    heartbeatEvents = false,
  ): Client {
    let channel = runId === null ? this.#views.get(view.key) : this.#runs.get(runId);
    if (channel === undefined) {
      channel = Hub.#channel(runId, runId === null ? view : View.ALL);
      if (runId !== null) this.#runs.set(runId, channel);
      else {
        this.#views.set(view.key, channel);
        this.#index(channel, true);
        if (view.needsTags) this.#tagViews++;
      }
    }
    // The channel's view, not the request's: clients of one view share one object.
    const client = new Client(res, runId, types, this.#clientSettings, channel.view, heartbeatEvents);
    const joined = channel;
    joined.connecting.add(client);
    this.#clients++;
    // `on`, not `once`: a response closes once, and `once` would add a wrapper per client.
    res.on("close", () => this.#leave(joined, client));
    return client;
  }

  /**
   * Starts the client's SSE response (status, headers, the `retry:` line) as a better-sse session.
   * Resolves once the head is written; the session joins its channel when the client goes live.
   * Each connection gets its own `retry:` (see `jitteredRetryMs`) and, under `maxStreamMs`,
   * its own deadline, so clients that came together do not come back together.
   */
  connect(client: Client): Promise<void> {
    return new Promise((resolve) => {
      // Each connection its own delay, so clients ended together do not come back together.
      const retry = retryField(jitteredRetryMs(this.#options.retryMs));
      const connection = new ResponseConnection(client.res, this.#options.headers, client, retry);
      const session = new Session<ClientSessionState>(connection, {
        // Not better-sse's `retry`: it writes the field as a block of its own (see `retryField`).
        retry: null,
        keepAlive: null,
        trustClientEventId: false,
        state: { client },
      });
      client.session = session;
      // Told of the disconnect by the close listener `open` added: one listener per response.
      client.connection = connection;
      session.once("connected", () => {
        // Counted from the head, not before: a deadline passing before the head went out
        // (a stalled event loop) would leave a 200 that never ends.
        const { maxStreamMs } = this.#options;
        if (maxStreamMs !== undefined) client.expireAfter(streamLifetimeMs(maxStreamMs));
        resolve();
      });
    });
  }

  /**
   * Publishes a frame to its run's watchers and to the global clients whose view holds the
   * run. `tags` are the run's tags (`undefined` when not known: then no view places it by tag).
   */
  publish(frame: Frame, tags?: readonly string[]): void {
    const channel = this.#runs.get(frame.runId);
    if (channel !== undefined) this.#push(channel, frame);
    this.#push(this.#views.get("") as HubChannel, frame);
    // Only the views indexed under the run or one of its tags can hold it: with many views
    // (one per user), a frame costs the views it may reach, not every view.
    const serial = ++this.#publishes;
    this.#offer(this.#byRun.get(frame.runId), frame, tags, serial);
    if (tags !== undefined) for (const tag of tags) this.#offer(this.#byTag.get(tag), frame, tags, serial);
  }

  /** Pushes a frame to the candidate global channels whose view holds it, each once per publish (`serial`). */
  #offer(
    candidates: Set<HubChannel> | undefined,
    frame: Frame,
    tags: readonly string[] | undefined,
    serial: number,
  ): void {
    if (candidates === undefined) return;
    for (const global of candidates) {
      if (global.seen === serial) continue;
      global.seen = serial;
      if (global.view.includes(frame.runId, tags)) this.#push(global, frame);
    }
  }

  /** Adds a global channel to the index by run and tag, or removes it. */
  #index(channel: HubChannel, add: boolean): void {
    const anchor = channel.view.anchor;
    if (anchor === undefined) return;
    const file = (index: Map<string, Set<HubChannel>>, key: string): void => {
      const set = index.get(key);
      if (add) {
        if (set === undefined) index.set(key, new Set([channel]));
        else set.add(channel);
      } else if (set !== undefined) {
        set.delete(channel);
        if (set.size === 0) index.delete(key);
      }
    };
    for (const runId of anchor.runs) file(this.#byRun, runId);
    for (const tag of anchor.tags) file(this.#byTag, tag);
  }

  /** Publishes a frame to every client of both streams, whatever their view. */
  publishAll(frame: Frame): void {
    for (const channel of this.#runs.values()) this.#push(channel, frame);
    for (const global of this.#views.values()) this.#push(global, frame);
  }

  /**
   * Ends the streams of one run (every stream when `runId` is absent) so that their clients
   * reconnect and resume from their last id. A client whose response has not started yet is
   * disconnected instead: an empty 200 would make a browser give up rather than reconnect.
   */
  endStreams(runId?: string): void {
    const channels = runId === undefined ? [...this.#views.values(), ...this.#runs.values()] : [this.#runs.get(runId)];
    for (const channel of channels) {
      if (channel === undefined) continue;
      const clients = [...channel.connecting, ...[...channel.sse.activeSessions].map((s) => s.state.client)];
      for (const client of clients) {
        try {
          if (client.res.headersSent) client.end("gap");
          else {
            client.markClosed();
            client.res.destroy();
          }
        } catch (error) {
          // A wrapper of `res.end` that throws (middleware) costs this stream only: it is
          // destroyed, its client resumes all the same, and every other stream still ends.
          client.res.destroy();
          this.#options.onFault(error, client);
        }
      }
    }
  }

  /**
   * Ends every stream and stops the timers; resolves once every started response is closed.
   * With `drainMs`, the streams end one by one, spread over that many ms (see `Drain`), while
   * the others keep streaming (see `hurry`). Called once. Never rejects: a stream that fails to
   * end (middleware wrapping `res.end` may throw) is destroyed and its error handed to
   * `onError`, and every other stream still ends.
   */
  async close(drainMs: number, onError: (error: unknown, client: Client) => void): Promise<void> {
    const clients: Client[] = [];
    for (const channel of [...this.#views.values(), ...this.#runs.values()]) {
      for (const client of channel.connecting) clients.push(client);
      for (const session of channel.sse.activeSessions) clients.push(session.state.client);
    }
    const end = (client: Client, ending: (client: Client) => Promise<void>): Promise<void> => {
      try {
        return ending(client).catch((error: unknown) => onError(error, client));
      } catch (error) {
        onError(error, client);
        client.res.destroy();
        return Promise.resolve();
      }
    };
    if (drainMs > 0 && clients.length > 0) {
      this.#drain = new Drain(clients, drainMs, (client) => end(client, Hub.#drainOne));
      await this.#drain.done;
    } else {
      await Promise.all(clients.map((client) => end(client, (c) => c.shutdown("drain"))));
    }
    if (this.#heartbeat !== undefined) clearInterval(this.#heartbeat);
    this.#heartbeat = undefined;
    this.#cancelFlush();
  }

  /** Ends at once every stream a drain has not ended yet. */
  hurry(): void {
    this.#drain?.hurry();
  }

  /**
   * Ends one stream of a drain: gracefully, so the client resumes from its last id. One whose
   * response has not started is dropped rather than answered 503, which would stop a browser's
   * reconnects: a dropped connection is retried.
   */
  static #drainOne(client: Client): Promise<void> {
    // Gone since the drain began (its run completed, it disconnected): nothing to wait for.
    if (client.left) return Promise.resolve();
    if (client.res.headersSent || client.res.destroyed) return client.shutdown("drain");
    const closed = new Promise<void>((resolve) => client.res.once("close", () => resolve()));
    client.markClosed();
    client.res.destroy();
    return closed;
  }

  #push(channel: HubChannel, frame: Frame): void {
    if (channel.pending.length === 0) {
      this.#dirty.push(channel);
      this.#flushing ??= this.#scheduleFlush();
    }
    channel.pending.push(frame);
    this.#pendingChars += frame.text.length;
    // Frames held for `coalesceMs` are memory: past `maxBufferedBytes` of them, they go now.
    if (
      this.#pendingChars > this.#options.maxBufferedBytes &&
      this.#flushing !== undefined &&
      "timeout" in this.#flushing
    ) {
      this.#cancelFlush();
      this.#flushing = { immediate: setImmediate(() => this.#flush()) };
    }
  }

  /**
   * When pending frames go out: at the end of this turn (setImmediate: after the I/O already
   * read), unless the last write was less than `coalesceMs` ago; then when that much has
   * passed, so a burst spread over many turns reaches each client in one write.
   */
  #scheduleFlush(): { immediate: NodeJS.Immediate } | { timeout: NodeJS.Timeout } {
    const wait = this.#flushedAt + this.#options.coalesceMs - performance.now();
    if (wait <= 0) return { immediate: setImmediate(() => this.#flush()) };
    return { timeout: setTimeout(() => this.#flush(), Math.ceil(wait)) };
  }

  #cancelFlush(): void {
    const flushing = this.#flushing;
    this.#flushing = undefined;
    if (flushing === undefined) return;
    if ("immediate" in flushing) clearImmediate(flushing.immediate);
    else clearTimeout(flushing.timeout);
  }

  #flush(): void {
    this.#flushing = undefined;
    this.#flushedAt = performance.now();
    this.#pendingChars = 0;
    const dirty = this.#dirty.splice(0);
    for (const channel of dirty) {
      const frames = channel.pending;
      channel.pending = [];
      if (channel.sse.sessionCount === 0 && channel.connecting.size === 0) continue;
      const chunk = joinFrames(frames);
      const bytes = Buffer.byteLength(chunk);
      const batch: FrameBatch = {
        frames,
        chunk,
        bytes,
        httpChunk: Buffer.from(httpChunk(chunk, bytes)),
        ends: channel.runId !== null && frames.some((f) => f.type === "complete" && f.runId === channel.runId),
      };
      for (const client of channel.connecting) this.#deliver(client, batch);
      for (const session of channel.sse.activeSessions) this.#deliver(session.state.client, batch);
    }
  }

  /** Hands one client its batch; if that throws, only this client is lost. */
  #deliver(client: Client, batch: FrameBatch): void {
    try {
      client.receive(batch);
    } catch (error) {
      // Its connection closes, and `close` makes it leave its channel as usual.
      client.fail(error);
    }
  }

  #beat(): void {
    for (const channel of [...this.#views.values(), ...this.#runs.values()]) {
      for (const session of channel.sse.activeSessions) session.state.client.heartbeat();
    }
  }

  #leave(channel: HubChannel, client: Client): void {
    client.markClosed();
    client.left = true;
    channel.connecting.delete(client);
    if (client.session !== undefined) channel.sse.deregister(client.session);
    client.connection?.disconnect();
    this.#clients--;
    if (channel.sse.sessionCount !== 0 || channel.connecting.size !== 0) return;
    if (channel.runId !== null) {
      if (this.#runs.get(channel.runId) === channel) this.#runs.delete(channel.runId);
    } else if (!channel.view.all && this.#views.get(channel.view.key) === channel) {
      this.#views.delete(channel.view.key);
      this.#index(channel, false);
      if (channel.view.needsTags) this.#tagViews--;
    }
  }
}
