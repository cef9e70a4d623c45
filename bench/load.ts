/**
 * The load process of the benchmark: holds many SSE connections over raw sockets and counts
 * the events each receives. It parses as little as it can (it finds the `"seq":` marker of
 * every event with `String#indexOf` over each read), so that it stays cheaper than the
 * servers it measures.
 */
import { connect, type Socket } from "node:net";
import { answerRequests } from "./children";
import { watcherHandlers } from "./load-watchers";
import { sampleProcess } from "./process-sample";
import type { LoadReplies, LoadRequest } from "./protocol";
import { wallClock } from "./protocol";

const MARKER = '"seq":';
const SENT = ',"sent":';
const RETRY = "retry:";
/**
 * One read buffer for every socket: reads are handled synchronously, one at a time, so
 * sharing it spares the load process a Buffer and a stream `data` event per read.
 */
const READ_BUFFER = Buffer.alloc(256 * 1024);
/** Latency histogram resolution and range. */
const BUCKET_MS = 0.01;
const BUCKETS = 2_000_000;

const histogram = new Uint32Array(BUCKETS);
let samples = 0;
let recordLatency = false;
let lastMarkerAt = 0;
let cpuAtReset = process.cpuUsage();

/** The end of the decimal number (digits and dots) starting at `at`. */
function numberEnd(text: string, at: number): number {
  let end = at;
  while (end < text.length) {
    const c = text.charCodeAt(end);
    if ((c < 48 || c > 57) && c !== 46) break;
    end++;
  }
  return end;
}

function record(text: string, marker: number, now: number): void {
  const at = numberEnd(text, marker + MARKER.length);
  if (!text.startsWith(SENT, at)) return; // split across reads: skip this sample
  const end = numberEnd(text, at + SENT.length);
  if (end === at + SENT.length || end === text.length) return;
  const sent = Number(text.slice(at + SENT.length, end));
  const bucket = Math.min(BUCKETS - 1, Math.max(0, Math.round((now - sent) / BUCKET_MS)));
  histogram[bucket] = (histogram[bucket] as number) + 1;
  samples++;
}

function percentile(p: number): number {
  const rank = Math.ceil((p / 100) * samples);
  let seen = 0;
  for (let i = 0; i < BUCKETS; i++) {
    seen += histogram[i] as number;
    if (seen >= rank) return i * BUCKET_MS;
  }
  return Number.NaN;
}

/** One SSE connection. */
class Connection {
  readonly socket: Socket;
  ready = false;
  closed = false;
  count = 0;
  #head = "";
  /** The end of the previous read, too short to hold a marker, where one may begin. */
  #tail = "";

  constructor(port: number, path: string, onReady: (ok: boolean) => void) {
    this.socket = connect({
      host: "127.0.0.1",
      port,
      noDelay: true,
      onread: {
        buffer: READ_BUFFER,
        callback: (bytes: number, buf: Uint8Array) => {
          this.#read(Buffer.from(buf.buffer, buf.byteOffset, bytes), onReady);
          return true;
        },
      },
    });
    this.socket.on("connect", () => {
      this.socket.write(
        `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nAccept: text/event-stream\r\nCache-Control: no-cache\r\n\r\n`,
      );
    });
    this.socket.on("error", () => {});
    this.socket.on("close", () => {
      this.closed = true;
      if (!this.ready) onReady(false);
    });
  }

  #read(buf: Buffer, onReady: (ok: boolean) => void): void {
    if (!this.ready) {
      this.#head += buf.toString("latin1");
      if (!this.#head.startsWith("HTTP/1.1 200")) {
        if (this.#head.length >= 12) this.socket.destroy();
      } else if (this.#head.includes(RETRY)) {
        this.ready = true;
        this.#head = "";
        onReady(true);
      }
    }
    this.#count(buf);
  }

  #count(buf: Buffer): void {
    // Searching a one-byte string is V8's own code; Buffer#indexOf pays a C++ call per marker.
    const text = buf.toString("latin1");
    const now = wallClock();
    let found = 0;
    if (this.#tail !== "" && (this.#tail + text.slice(0, MARKER.length - 1)).includes(MARKER)) found++;
    let at = text.indexOf(MARKER);
    while (at >= 0) {
      found++;
      if (recordLatency) record(text, at, now);
      at = text.indexOf(MARKER, at + MARKER.length);
    }
    this.#tail = (text.length >= MARKER.length - 1 ? text : this.#tail + text).slice(1 - MARKER.length);
    if (found > 0) {
      this.count += found;
      lastMarkerAt = now;
    }
  }
}

const connections: Connection[] = [];

function openAll(
  ports: readonly number[],
  paths: readonly string[],
  count: number,
  concurrency: number,
): Promise<LoadReplies["connect"]> {
  return new Promise((resolve) => {
    const started = wallClock();
    let opened = 0;
    let settled = 0;
    let failed = 0;
    const more = (): void => {
      while (opened < count && opened - settled < concurrency) {
        const port = ports[opened % ports.length] as number;
        const path = paths[opened % paths.length] as string;
        opened++;
        connections.push(
          new Connection(port, path, (ok) => {
            settled++;
            if (!ok) failed++;
            if (settled === count) resolve({ connected: count - failed, failed, acceptMs: wallClock() - started });
            else more();
          }),
        );
      }
    };
    more();
  });
}

function awaitEvents(events: number, timeoutMs: number): Promise<LoadReplies["await"]> {
  return new Promise((resolve) => {
    const deadline = Date.now() + timeoutMs;
    const check = (): void => {
      let total = 0;
      let min = Number.POSITIVE_INFINITY;
      let closed = 0;
      let behind = 0;
      for (const c of connections) {
        total += c.count;
        if (c.closed) closed++;
        else if (c.count < events) behind++;
        min = Math.min(min, c.count);
      }
      if (behind > 0 && Date.now() < deadline) {
        setTimeout(check, 10);
        return;
      }
      resolve({
        complete: behind === 0 && closed === 0,
        lastEventAt: lastMarkerAt,
        total,
        minPerConnection: connections.length === 0 ? 0 : min,
        closed,
        cpuMs: ((u) => (u.user + u.system) / 1000)(process.cpuUsage(cpuAtReset)),
        latency: recordLatency ? { p50: percentile(50), p99: percentile(99), samples } : null,
      });
    };
    check();
  });
}

const handlers: { [K in LoadRequest["cmd"]]: (req: Extract<LoadRequest, { cmd: K }>) => Promise<LoadReplies[K]> } = {
  connect: ({ port, ports, path, paths, count, concurrency }) =>
    openAll(
      ports !== undefined && ports.length > 0 ? ports : [port],
      paths !== undefined && paths.length > 0 ? paths : [path],
      count,
      concurrency,
    ),
  reset: async ({ latency }) => {
    for (const c of connections) c.count = 0;
    histogram.fill(0);
    samples = 0;
    recordLatency = latency;
    cpuAtReset = process.cpuUsage();
    return {};
  },
  await: ({ events, timeoutMs }) => awaitEvents(events, timeoutMs),
  disconnect: async () => {
    for (const c of connections) c.socket.destroy();
    connections.length = 0;
    return {};
  },
  ...watcherHandlers,
  sample: async ({ loopDelay }) => sampleProcess(loopDelay),
};

answerRequests<LoadRequest>(handlers);
process.send?.({ listening: 0 });
