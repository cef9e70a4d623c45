/**
 * The storm phase's clients, in the load process: real SSE clients (Node's HTTP client, a
 * spec parser) that read every frame and check every event of their run: each run's events
 * carry `seq` 1, 2, ..., so a watcher sees a duplicate or a missing event at once. Slower
 * than the fan-out's raw counters, which is why they are kept apart.
 */
import { type ClientRequest, request } from "node:http";
import { createParser, type EventSourceMessage } from "eventsource-parser";
import { compareEnvelopeIds } from "../lib/source";
import {
  type DeliveryStamps,
  type FailoverReply,
  type LatencySplit,
  type LoadReplies,
  type LoadRequest,
  type WatcherTally,
  wallClock,
} from "./protocol";

const SEQ = '"seq":';
const SENT = '"sent":';
/** What a browser's `EventSource` waits before reconnecting until the server sent `retry:` (runcast always does). */
const DEFAULT_RETRY_MS = 3000;

/** The number in an event's JSON after `marker`, found without parsing the rest. */
function numberAfter(data: string, marker: string): number {
  const at = data.indexOf(marker);
  if (at < 0) return Number.NaN;
  let end = at + marker.length;
  while (end < data.length) {
    const c = data.charCodeAt(end);
    if ((c < 48 || c > 57) && c !== 46) break;
    end++;
  }
  return Number(data.slice(at + marker.length, end));
}

/**
 * Delivery latencies of the watchers that record them, four numbers each: receive time,
 * latency (ms), the event's send time and the watcher's local port (which name the delivery in
 * the server's stamps).
 */
const latencies: number[] = [];

/** The `seq` of an event's JSON, found without parsing the rest. */
function seqOf(data: string): number {
  const at = data.indexOf(SEQ);
  if (at < 0) return Number.NaN;
  let end = at + SEQ.length;
  while (end < data.length && data.charCodeAt(end) >= 48 && data.charCodeAt(end) <= 57) end++;
  return Number(data.slice(at + SEQ.length, end));
}

/** What a watcher must reach to count as live in the current wave. */
type LiveWhen = { kind: "first-frame" } | { kind: "seq"; seqs: Record<string, number> };

/** One client watching one run's stream, across its reconnects. */
class Watcher {
  /** Where it connects; a resume may go to another process (a deploy). */
  port: number;
  readonly path: string;
  readonly runId: string;
  readonly #runMarker: string;
  lastId: string | undefined;
  /** The last event's `seq`; 0 before the first. */
  lastSeq = 0;
  events = 0;
  duplicates = 0;
  missing = 0;
  idsOutOfOrder = 0;
  wrongRun = 0;
  resyncs = 0;
  resumeSnapshots = 0;
  /** This connection's outcome: failed before its head, head received, closed when it should be open. */
  failed = false;
  headAt = Number.NaN;
  liveAt = Number.NaN;
  closed = false;
  #request: ClientRequest | undefined;
  #dropping = false;
  #resumed = false;
  #liveWhen: LiveWhen = { kind: "first-frame" };
  /** Where it reconnects when the server ends its stream (a deploy); once only. */
  readonly failoverPort: number | undefined;
  readonly recordsLatency: boolean;
  /** The server's last `retry:`, as an `EventSource` keeps it. */
  retryMs = DEFAULT_RETRY_MS;
  /** Failover: the delay used instead of `retryMs`, when set (one fixed delay for every client). */
  readonly fixedRetryMs: number | undefined;
  /** Failover: when the server ended the stream, when it asked the other port, its head from there, its first live event there. */
  endedAt = Number.NaN;
  reconnectAskedAt = Number.NaN;
  reconnectedAt = Number.NaN;
  liveAgainAt = Number.NaN;
  failedAttempts = 0;
  /** The local port of its connection (its name in the server's stamps); NaN before a head. */
  localPort = Number.NaN;

  constructor(port: number, path: string, failoverPort?: number, recordsLatency = false, fixedRetryMs?: number) {
    this.port = port;
    this.failoverPort = failoverPort;
    this.fixedRetryMs = fixedRetryMs;
    this.recordsLatency = recordsLatency;
    this.path = path;
    this.runId = decodeURIComponent(/\/runs\/([^/]+)\/stream/.exec(path)?.[1] ?? "");
    this.#runMarker = `"run_id":${JSON.stringify(this.runId)}`;
  }

  /** Opens the stream (with `Last-Event-ID` when `resume`); `settled` is called once at its head or failure. */
  open(resume: boolean, liveWhen: LiveWhen, settled: () => void): void {
    this.#liveWhen = liveWhen;
    this.#resumed = resume;
    this.#dropping = false;
    this.failed = false;
    this.closed = false;
    this.headAt = Number.NaN;
    this.liveAt = Number.NaN;
    let once = false;
    const settle = (): void => {
      if (!once) {
        once = true;
        settled();
      }
    };
    const headers: Record<string, string> = { Accept: "text/event-stream", "Cache-Control": "no-cache" };
    if (resume && this.lastId !== undefined) headers["Last-Event-ID"] = this.lastId;
    const parser = createParser({
      onEvent: (message) => this.#frame(message),
      onRetry: (ms) => {
        this.retryMs = ms;
      },
    });
    const req = request({ host: "127.0.0.1", port: this.port, path: this.path, headers, agent: false });
    this.#request = req;
    req.on("response", (res) => {
      if (res.statusCode !== 200) {
        this.failed = true;
        res.resume();
        settle();
        return;
      }
      this.headAt = wallClock();
      this.localPort = res.socket.localPort ?? Number.NaN;
      settle();
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => parser.feed(chunk));
      res.on("close", () => {
        if (this.#dropping) return;
        if (this.failoverPort !== undefined && Number.isNaN(this.endedAt)) this.#failOver();
        else this.closed = true;
      });
    });
    req.on("error", () => {
      if (Number.isNaN(this.headAt)) this.failed = true;
      else if (!this.#dropping) this.closed = true;
      settle();
    });
    req.end();
  }

  /** The server ended the stream: back after its `retry:` delay (or the fixed one), on the other port, from the last id. */
  #failOver(): void {
    this.endedAt = wallClock();
    const delay = (): number => this.fixedRetryMs ?? this.retryMs;
    const attempt = (): void => {
      this.port = this.failoverPort as number;
      this.reconnectAskedAt = wallClock();
      this.open(true, this.#liveWhen, () => {
        if (this.failed) {
          this.failedAttempts++;
          setTimeout(attempt, delay());
        } else this.reconnectedAt = this.headAt;
      });
    };
    setTimeout(attempt, delay());
  }

  drop(): void {
    this.#dropping = true;
    this.#request?.destroy();
  }

  isLive(): boolean {
    return !Number.isNaN(this.liveAt);
  }

  #frame(message: EventSourceMessage): void {
    if (message.id !== undefined && message.id !== "") {
      if (this.lastId !== undefined && compareEnvelopeIds(message.id, this.lastId) <= 0) this.idsOutOfOrder++;
      this.lastId = message.id;
    }
    if (message.event === "event") {
      if (this.recordsLatency || !Number.isNaN(this.reconnectAskedAt)) {
        const now = wallClock();
        const sent = numberAfter(message.data, SENT);
        if (this.recordsLatency) latencies.push(now, now - sent, sent, this.localPort);
        // Recorded after it asked to come back: its replay is behind it, it is on the live flow.
        if (Number.isNaN(this.liveAgainAt) && sent >= this.reconnectAskedAt) this.liveAgainAt = now;
      }
      if (!message.data.includes(this.#runMarker)) this.wrongRun++;
      const seq = seqOf(message.data);
      this.events++;
      if (this.lastSeq === 0) this.lastSeq = seq;
      else if (seq <= this.lastSeq) this.duplicates++;
      else {
        this.missing += seq - this.lastSeq - 1;
        this.lastSeq = seq;
      }
    } else if (message.event === "resync") {
      this.resyncs++;
    } else if (message.event === "state" && this.#resumed) {
      this.resumeSnapshots++;
    }
    if (Number.isNaN(this.liveAt)) {
      const when = this.#liveWhen;
      if (when.kind === "first-frame" || this.lastSeq >= (when.seqs[this.runId] ?? Number.POSITIVE_INFINITY)) {
        this.liveAt = wallClock();
      }
    }
  }
}

const watchers: Watcher[] = [];

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] as number;
}

function tally(done: (w: Watcher) => boolean): WatcherTally {
  const t: WatcherTally = {
    watchers: watchers.length,
    complete: true,
    events: 0,
    duplicates: 0,
    missing: 0,
    idsOutOfOrder: 0,
    wrongRun: 0,
    resyncs: 0,
    resumeSnapshots: 0,
    closed: 0,
  };
  for (const w of watchers) {
    t.complete &&= done(w) && !w.closed && !w.failed;
    t.events += w.events;
    t.duplicates += w.duplicates;
    t.missing += w.missing;
    t.idsOutOfOrder += w.idsOutOfOrder;
    t.wrongRun += w.wrongRun;
    t.resyncs += w.resyncs;
    t.resumeSnapshots += w.resumeSnapshots;
    if (w.closed) t.closed++;
  }
  return t;
}

/** Polls `done` over every watcher until all pass or the time is up. */
function until(done: (w: Watcher) => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  return new Promise((resolve) => {
    const check = (): void => {
      if (Date.now() >= deadline || watchers.every((w) => w.failed || w.closed || done(w))) resolve();
      else setTimeout(check, 10);
    };
    check();
  });
}

async function watch(req: Extract<LoadRequest, { cmd: "watch" }>): Promise<LoadReplies["watch"]> {
  if (req.mode === "fresh") {
    for (let i = 0; i < req.count; i++) {
      watchers.push(
        new Watcher(
          req.ports[i % req.ports.length] as number,
          req.paths[i % req.paths.length] as string,
          req.failoverPort,
          req.latency === true,
          req.failoverFixedRetryMs,
        ),
      );
    }
  }
  const liveWhen: LiveWhen = req.mode === "fresh" ? { kind: "first-frame" } : { kind: "seq", seqs: req.seqs ?? {} };
  let behind = 0;
  if (req.mode === "resume") {
    watchers.forEach((w, i) => {
      behind += (req.seqs?.[w.runId] ?? w.lastSeq) - w.lastSeq;
      w.port = req.ports[i % req.ports.length] as number;
    });
  }
  const startedAt = wallClock();
  const deadline = Date.now() + req.timeoutMs;
  // At most `concurrency` waiting for their head, as browsers behind many NATs would arrive;
  // the whole wave gets `timeoutMs`, heads included (a server may send a head only once it read the replay).
  await new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, req.timeoutMs);
    let opened = 0;
    let settled = 0;
    const more = (): void => {
      while (opened < watchers.length && opened - settled < req.concurrency) {
        const w = watchers[opened++] as Watcher;
        w.open(req.mode === "resume", liveWhen, () => {
          settled++;
          if (settled === watchers.length) {
            clearTimeout(timer);
            resolve();
          } else more();
        });
      }
    };
    if (watchers.length === 0) {
      clearTimeout(timer);
      resolve();
    } else more();
  });
  const headsAt = wallClock();
  await until((w) => w.isLive(), Math.max(0, deadline - Date.now()));
  const times = watchers.map((w) => w.liveAt - startedAt).sort((a, b) => a - b);
  const t = tally((w) => w.isLive());
  return {
    failed: watchers.filter((w) => w.failed).length,
    headsMs: headsAt - startedAt,
    liveMs: t.complete ? Math.max(...times) : Number.NaN,
    liveP50Ms: percentile(times, 50),
    liveP99Ms: percentile(times, 99),
    complete: t.complete,
    behindMean: watchers.length === 0 ? 0 : behind / watchers.length,
    tally: t,
  };
}

function failover(): FailoverReply {
  const moving = watchers.filter((w) => w.failoverPort !== undefined);
  const latest = (times: number[]): number =>
    times.length === moving.length && !times.some(Number.isNaN) ? Math.max(...times) : Number.NaN;
  const ended = moving.filter((w) => !Number.isNaN(w.endedAt));
  return {
    ended: ended.length,
    reconnected: moving.filter((w) => !Number.isNaN(w.reconnectedAt)).length,
    live: moving.filter((w) => !Number.isNaN(w.liveAgainAt)).length,
    failedAttempts: moving.reduce((sum, w) => sum + w.failedAttempts, 0),
    allReconnectedAt: latest(moving.map((w) => w.reconnectedAt)),
    allLiveAt: latest(moving.map((w) => w.liveAgainAt)),
    firstEndedAt: ended.length === 0 ? Number.NaN : Math.min(...ended.map((w) => w.endedAt)),
  };
}

/** Each delivery's latency split at the server's stamps of its event and its client (see {@link LatencySplit}). */
function splitLatency(
  received: readonly { at: number; sent: number; port: number }[],
  stamps: DeliveryStamps,
): LatencySplit {
  const routerAt = new Map<number, number>();
  for (let i = 0; i < stamps.received.length; i += 2) {
    routerAt.set(stamps.received[i] as number, stamps.received[i + 1] as number);
  }
  const writtenAt = new Map<string, number>();
  for (let i = 0; i < stamps.written.length; i += 3) {
    writtenAt.set(`${stamps.written[i]} ${stamps.written[i + 1]}`, stamps.written[i + 2] as number);
  }
  const parts: { total: number; toRouter: number; inServer: number; toClient: number }[] = [];
  for (const { at, sent, port } of received) {
    const got = routerAt.get(sent);
    const written = writtenAt.get(`${sent} ${port}`);
    if (got === undefined || written === undefined) continue;
    parts.push({ total: at - sent, toRouter: got - sent, inServer: written - got, toClient: at - written });
  }
  const of = (part: "toRouter" | "inServer" | "toClient"): { p50: number; p99: number } => {
    const sorted = parts.map((x) => x[part]).sort((a, b) => a - b);
    return { p50: percentile(sorted, 50), p99: percentile(sorted, 99) };
  };
  const p99 = percentile(
    parts.map((x) => x.total).sort((a, b) => a - b),
    99,
  );
  const tail = parts.filter((x) => x.total >= p99);
  const mean = (part: "total" | "toRouter" | "inServer" | "toClient"): number =>
    tail.length === 0 ? Number.NaN : tail.reduce((sum, x) => sum + x[part], 0) / tail.length;
  return {
    matched: parts.length,
    unmatched: received.length - parts.length,
    toRouter: of("toRouter"),
    inServer: of("inServer"),
    toClient: of("toClient"),
    tail: {
      deliveries: tail.length,
      total: mean("total"),
      toRouter: mean("toRouter"),
      inServer: mean("inServer"),
      toClient: mean("toClient"),
    },
  };
}

/** The storm and deploy phases' requests to the load process. */
export const watcherHandlers: {
  [K in "watch" | "watch-wait" | "watch-drop" | "watch-clear" | "watch-latency" | "watch-failover"]: (
    req: Extract<LoadRequest, { cmd: K }>,
  ) => Promise<LoadReplies[K]>;
} = {
  watch,
  "watch-wait": async ({ events, seqs, timeoutMs }) => {
    const done = (w: Watcher): boolean =>
      w.events >= (events ?? 0) && (seqs === undefined || w.lastSeq >= (seqs[w.runId] ?? Number.POSITIVE_INFINITY));
    await until(done, timeoutMs);
    return tally(done);
  },
  "watch-drop": async () => {
    for (const w of watchers) w.drop();
    return {};
  },
  "watch-clear": async () => {
    for (const w of watchers) w.drop();
    watchers.length = 0;
    latencies.length = 0;
    return {};
  },
  "watch-latency": async ({ from, to, stamps }) => {
    const window: number[] = [];
    const received: { at: number; sent: number; port: number }[] = [];
    for (let i = 0; i < latencies.length; i += 4) {
      const at = latencies[i] as number;
      if (at >= from && at <= to) {
        window.push(latencies[i + 1] as number);
        received.push({ at, sent: latencies[i + 2] as number, port: latencies[i + 3] as number });
      }
    }
    window.sort((a, b) => a - b);
    const figures = { p50: percentile(window, 50), p99: percentile(window, 99), samples: window.length };
    return stamps === undefined ? figures : { ...figures, split: splitLatency(received, stamps) };
  },
  "watch-failover": async () => failover(),
};
