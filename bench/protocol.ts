/**
 * What the benchmark's processes say to each other over their IPC channels, and the
 * event every server broadcasts.
 */

/**
 * The servers the benchmark knows. `express-loop` is the hand-written loop as an Express 5
 * route: what Express itself costs, runcast's floor as Express middleware. `runcast-redis`
 * is two processes sharing one Redis (see bench/servers/runcast-redis.ts), skipped when no
 * Redis answers.
 */
export const SERVER_KINDS = [
  "handwritten",
  "runcast",
  "better-sse",
  "express-loop",
  "runcast-redis",
  "runcast-global",
  "runcast-scoped",
  "runcast-scoped-even",
] as const;
/** One of the servers. */
export type ServerKind = (typeof SERVER_KINDS)[number];
/** The servers compared by default. */
export const DEFAULT_SERVERS: readonly ServerKind[] = [
  "handwritten",
  "runcast",
  "better-sse",
  "express-loop",
  "runcast-redis",
];

/** The run every runcast client watches. */
export const RUN_ID = "run_bench";

/** The stream path of each server. */
export const STREAM_PATH: Record<ServerKind, string> = {
  handwritten: "/stream",
  runcast: `/api/runs/${RUN_ID}/stream`,
  "better-sse": "/stream",
  "express-loop": "/stream",
  "runcast-redis": `/api/runs/${RUN_ID}/stream`,
  // The scoped phase's: the global stream, with a token per client (bench/scoped.ts).
  "runcast-global": "/api/stream",
  "runcast-scoped": "/api/stream",
  "runcast-scoped-even": "/api/stream",
};

/** A benchmark run event: a realistic progress event plus its sequence number and send time. */
export interface BenchEvent {
  type: string;
  run_id: string;
  unit: string;
  ts: string;
  /** Sequence number; `"seq":` is the marker the load clients count. */
  seq: number;
  /** Wall-clock send time in ms (sub-ms precision), for delivery latency. */
  sent: number;
  completed_units: number;
  total_units: number;
  attempt: number;
  message: string;
  [key: string]: unknown;
}

/** Wall-clock time in ms with sub-millisecond precision, comparable across processes. */
export function wallClock(): number {
  return performance.timeOrigin + performance.now();
}

const UNITS = ["auth-service", "billing-worker", "search-indexer", "notifications", "media-transcoder"];

/** A ~220-byte run event (serialized), as a job daemon would record it; `seq` counts per run where there are several. */
export function benchEvent(seq: number, runId: string = RUN_ID): BenchEvent {
  const done = seq % 1000;
  return {
    type: "unit.progress",
    run_id: runId,
    unit: UNITS[seq % UNITS.length] as string,
    ts: new Date().toISOString(),
    seq,
    sent: wallClock(),
    completed_units: done,
    total_units: 1000,
    attempt: 1,
    message: `compiled ${done} of 1000 modules in the build cache`,
  };
}

/** Requests from the orchestrator to a server process. */
export type ServerRequest =
  /** Collect garbage, then report memory. */
  | { cmd: "memory" }
  /** Broadcast `k` events per event-loop tick for `durationMs`, holding back while sampled clients lag. */
  | { cmd: "blast"; k: number; durationMs: number; governorBytes: number }
  /** Broadcast `count` events, `perStep` of them (default 1) every `intervalMs`. */
  | { cmd: "paced"; count: number; intervalMs: number; perStep?: number }
  /** Connected clients and clients cut off. */
  | { cmd: "stats" }
  /** The process's CPU time so far (user + system): read before and after a window, the difference is what it used. */
  | { cmd: "cpu" }
  /** Creates these runs (a writer process of the storm phase). */
  | { cmd: "runs-create"; runs: readonly string[] }
  /** Records `perRun` events in each run created, round robin, and answers once Redis acknowledged them all. */
  | { cmd: "runs-record"; perRun: number }
  /**
   * Records `perSecond` events per run and second from now on, in the background; 0 stops
   * that and answers once every write was acknowledged.
   */
  | { cmd: "runs-flow"; perSecond: number }
  /** Closes the server's router (`close({ drainMs })`) and answers once it resolved (the deploy phase). */
  | { cmd: "close"; drainMs: number }
  /** Wall-clock arrival times of every HTTP request received since `since`. */
  | { cmd: "arrivals"; since: number }
  /** This process's CPU time and event-loop delay now (see {@link SampleRequest}). */
  | SampleRequest
  /**
   * When each event reached the router from the source, and when it was written to each
   * stamped client's socket (see {@link DeliveryStamps}), for events sent from `since` on; from
   * a server started with stamps on (the deploy phase's survivor), else none.
   */
  | { cmd: "stamps"; since: number };

/**
 * Reads the process's CPU time so far and, once its event-loop delay is monitored, the delay
 * since the previous sample, then starts over: two samples bound a window. The first with
 * `loopDelay` starts the monitor (answering `loop: null`).
 */
export interface SampleRequest {
  cmd: "sample";
  loopDelay: boolean;
}

/** A process's CPU time and event-loop delay, read at `at`. */
export interface ProcessSample {
  /** Wall clock when read. */
  at: number;
  /** CPU time (user + system) used since the process started, in ms. */
  cpuMs: number;
  /** The event-loop delay since the previous sample; null when not monitored (or just started). */
  loop: LoopDelay | null;
}

/**
 * How late the event loop ran a timer due every `resolutionMs`, in ms, from
 * `perf_hooks.monitorEventLoopDelay` (less the resolution, which Node counts in): how long
 * work already queued kept it from running the next callback.
 */
export interface LoopDelay {
  p50: number;
  p99: number;
  max: number;
  /** Timer runs recorded (NaN figures when 0). */
  samples: number;
  resolutionMs: number;
}

/**
 * Where a serving process's events were when, each named by its `sent` (its send time in the
 * writer). The clients stamped are those that connected without `Last-Event-ID` (in the deploy
 * phase, the survivor's own: the moved ones resume with it); each is named by its port, the
 * socket's remote port on the server and its local port in the load process.
 */
export interface DeliveryStamps {
  /** Two numbers per event: its `sent`, and when the source handed it to the router. */
  received: number[];
  /** Three per event written to a stamped client: its `sent`, the client's port, and when it was handed to the socket's `write`. */
  written: number[];
}

/** Answers of a server process, by request. */
export interface ServerReplies {
  memory: { rss: number; heapUsed: number };
  blast: { broadcasts: number; startedAt: number; endedAt: number; cpuMs: number };
  paced: { broadcasts: number };
  stats: { clients: number; cutOffs: number };
  cpu: { ms: number };
  "runs-create": Record<string, never>;
  "runs-record": RunsWritten;
  "runs-flow": RunsWritten;
  close: { closedAt: number };
  arrivals: { times: number[] };
  sample: ProcessSample;
  stamps: DeliveryStamps;
}

/** Where the writer of several runs stands. */
export interface RunsWritten {
  /** The last event's `seq` of each run (every run's events count 1, 2, ...). */
  seqs: Record<string, number>;
  /** The slowest write's round trip since the previous answer, in ms: how long Redis kept a writer waiting. */
  maxWriteMs: number;
}

/** Requests from the orchestrator to the load process. */
export type LoadRequest =
  /**
   * Opens `count` SSE connections, at most `concurrency` at a time still waiting for their
   * head; with `ports`, connection i goes to `ports[i % ports.length]` instead of `port`.
   */
  | {
      cmd: "connect";
      port: number;
      ports?: readonly number[];
      path: string;
      /** Connection i asks for `paths[i % paths.length]` instead of `path` (clients with different filters). */
      paths?: readonly string[];
      count: number;
      concurrency: number;
    }
  /** Zeroes every connection's event count; `latency` also records delivery latencies from now on. */
  | { cmd: "reset"; latency: boolean }
  /** Waits until every connection counted `events` events since the reset, or `timeoutMs` passed. */
  | { cmd: "await"; events: number; timeoutMs: number }
  /** Closes every connection. */
  | { cmd: "disconnect" }
  /**
   * Watchers (the storm phase's clients, which parse every frame and check every event):
   * `fresh` opens `count` new ones, watcher i on `paths[i % paths.length]` of
   * `ports[i % ports.length]`; `resume` reopens every watcher at once (watcher i now on
   * `ports[i % ports.length]`, so clients may resume on another process), each sending the
   * id of the last frame it got as `Last-Event-ID`. At most `concurrency` wait for their head
   * at a time. Answers once every watcher is live (see {@link WatchReply}) or `timeoutMs` passed.
   */
  | {
      cmd: "watch";
      mode: "fresh" | "resume";
      ports: readonly number[];
      paths: readonly string[];
      count: number;
      concurrency: number;
      /** Resume: the `seq` of each run a watcher must have reached to count as live. */
      seqs?: Record<string, number>;
      timeoutMs: number;
      /**
       * Fresh: when the server ends a watcher's stream, it reconnects to this port after the
       * server's `retry:` delay, with `Last-Event-ID`, as a browser's `EventSource` does (a deploy).
       */
      failoverPort?: number;
      /**
       * Fresh, with `failoverPort`: wait exactly this many ms before reconnecting (and between
       * failed attempts), whatever `retry:` the server sent: every client the same delay, as
       * browsers waited when a server sent one fixed `retry:` (the deploy phase's baseline).
       */
      failoverFixedRetryMs?: number;
      /** Fresh: these watchers record each event's delivery latency (see `watch-latency`). */
      latency?: boolean;
    }
  /**
   * Delivery latency percentiles of the events received between `from` and `to` (wall clock);
   * with the serving process's `stamps`, each latency split where it was spent (see {@link LatencySplit}).
   */
  | { cmd: "watch-latency"; from: number; to: number; stamps?: DeliveryStamps }
  /** Where the failover of every watcher stands (see {@link FailoverReply}). */
  | { cmd: "watch-failover" }
  /** Waits until every watcher has `events` events since it first connected and reached `seqs` of its run. */
  | { cmd: "watch-wait"; events?: number; seqs?: Record<string, number>; timeoutMs: number }
  /** Drops every watcher's connection at once; each remembers where it was. */
  | { cmd: "watch-drop" }
  /** Forgets every watcher. */
  | { cmd: "watch-clear" }
  /** The load process's CPU time and event-loop delay now. */
  | SampleRequest;

/** Answers of the load process, by request. */
export interface LoadReplies {
  connect: { connected: number; failed: number; acceptMs: number };
  reset: Record<string, never>;
  await: {
    /** Whether every open connection got every event. */
    complete: boolean;
    /** Wall-clock time of the last event counted. */
    lastEventAt: number;
    total: number;
    minPerConnection: number;
    closed: number;
    /** CPU time the load process used since the reset. */
    cpuMs: number;
    /** Latency percentiles in ms, when recorded since the reset. */
    latency: { p50: number; p99: number; samples: number } | null;
  };
  disconnect: Record<string, never>;
  watch: WatchReply;
  "watch-wait": WatcherTally;
  "watch-drop": Record<string, never>;
  "watch-clear": Record<string, never>;
  "watch-latency": { p50: number; p99: number; samples: number; split?: LatencySplit };
  "watch-failover": FailoverReply;
  sample: ProcessSample;
}

/** Percentiles of one part of the delivery latency, over deliveries, in ms. */
export interface LatencyPart {
  p50: number;
  p99: number;
}

/**
 * Where the delivery latency of a window's deliveries went, each split in three with the
 * serving process's stamps: **to the router** (writer, Redis, the serving process's reader,
 * until its source handed the event to the router), **in the server** (the router, then
 * waiting for the turn that writes it out and the writes to the clients before this one,
 * until it was written to this client's socket), **to the client** (the kernel, and the load
 * process reading it).
 */
export interface LatencySplit {
  /** Deliveries with a stamp, split below; and without one (not split). */
  matched: number;
  unmatched: number;
  toRouter: LatencyPart;
  inServer: LatencyPart;
  toClient: LatencyPart;
  /**
   * The deliveries at or above the p99 of the matched ones' latency, and the mean of each
   * part over them: what the slowest 1% were made of (the three add up to `total`).
   */
  tail: { deliveries: number; total: number; toRouter: number; inServer: number; toClient: number };
}

/** How the watchers moved to their failover port after their stream ended. */
export interface FailoverReply {
  /** Watchers whose stream was ended by the server. */
  ended: number;
  /** Watchers with a head from the failover port. */
  reconnected: number;
  /** Watchers that received an event recorded after their reconnect (past their replay, on the live flow). */
  live: number;
  /** Reconnect attempts that failed (error or a status other than 200), each retried. */
  failedAttempts: number;
  /** The latest head from the failover port and the latest first live event, wall clock; NaN while some lack one. */
  allReconnectedAt: number;
  allLiveAt: number;
  /** The first stream end, wall clock. */
  firstEndedAt: number;
}

/**
 * How a wave of watcher connections went. A fresh watcher is live once its first frame (the
 * snapshot) arrived; a resuming one once it received every event of its run up to the
 * `seqs` asked for, i.e. everything it missed.
 */
export interface WatchReply {
  /** Watchers whose request failed or got another status than 200. */
  failed: number;
  /** From the first request until every head arrived. */
  headsMs: number;
  /** From the first request until every watcher was live; NaN when some never were. */
  liveMs: number;
  /** Percentiles of the watchers' own times to live, from the first request. */
  liveP50Ms: number;
  liveP99Ms: number;
  /** Whether every watcher was live within the timeout. */
  complete: boolean;
  /** Resume: how many events of its run each watcher lacked when it reconnected, on average. */
  behindMean: number;
  tally: WatcherTally;
}

/** What every watcher received, summed, and every way it could have gone wrong. */
export interface WatcherTally {
  watchers: number;
  /** Whether every watcher met the awaited condition. */
  complete: boolean;
  /** `event` frames received. */
  events: number;
  /** Events whose `seq` a watcher had already received (sent twice). */
  duplicates: number;
  /** Events a watcher never received: its `seq` jumped past them. */
  missing: number;
  /** Frames whose id was not greater than the previous frame's. */
  idsOutOfOrder: number;
  /** Events of another run than the watcher's. */
  wrongRun: number;
  /** `resync` frames. */
  resyncs: number;
  /** `state` frames after a resume: a snapshot instead of the missed events. */
  resumeSnapshots: number;
  /** Watchers whose connection closed while they should be open. */
  closed: number;
}

/** A message carrying a request, tagged so its reply can be matched. */
export interface Envelope<T> {
  id: number;
  body: T;
}

/** A reply to the request with the same id. */
export interface Reply {
  id: number;
  ok: boolean;
  body?: unknown;
  error?: string;
}

/** What a server process sends once it listens. */
export interface ListeningMessage {
  listening: number;
}
