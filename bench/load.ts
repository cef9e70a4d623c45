/**
 * The load process of the benchmark: holds many SSE connections over raw sockets and counts
 * the events each receives. It parses as little as it can (it finds the `"seq":` marker of
 * every event with `Buffer#indexOf`), so that it stays cheaper than the servers it measures.
 */
import { connect, type Socket } from "node:net";
import type { Envelope, LoadReplies, LoadRequest, Reply } from "./protocol";
import { wallClock } from "./protocol";

const MARKER = Buffer.from('"seq":');
const SENT = Buffer.from(',"sent":');
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

/** Reads the decimal number starting at `at` (digits and one dot); NaN when there is none. */
function numberAt(buf: Buffer, at: number): number {
  let end = at;
  while (end < buf.length) {
    const c = buf[end] as number;
    if ((c < 48 || c > 57) && c !== 46) break;
    end++;
  }
  return end === at ? Number.NaN : Number(buf.toString("latin1", at, end));
}

function record(buf: Buffer, marker: number, now: number): void {
  let at = marker + MARKER.length;
  while (at < buf.length && (buf[at] as number) >= 48 && (buf[at] as number) <= 57) at++;
  if (buf.indexOf(SENT, at) !== at) return; // split across reads: skip this sample
  const sent = numberAt(buf, at + SENT.length);
  if (Number.isNaN(sent)) return;
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

/** Whether a marker starts in `tail` (the end of the previous read) and ends in `buf`. */
function spansSeam(tail: Buffer, tailLength: number, buf: Buffer): boolean {
  for (let start = 1; start < MARKER.length; start++) {
    // The marker's first `MARKER.length - start` bytes end `tail`; the rest begin `buf`.
    const inTail = MARKER.length - start;
    if (buf.length < start || inTail > tailLength) continue;
    let match = true;
    for (let i = 0; i < MARKER.length && match; i++) {
      const byte = i < inTail ? tail[tailLength - inTail + i] : buf[i - inTail];
      match = byte === MARKER[i];
    }
    if (match) return true;
  }
  return false;
}

/** One SSE connection. */
class Connection {
  readonly socket: Socket;
  ready = false;
  closed = false;
  count = 0;
  #head = "";
  /** The last bytes of the previous read, copied (a view would keep the whole read buffer alive). */
  readonly #tail = Buffer.alloc(MARKER.length - 1);
  #tailLength = 0;

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
    let found = 0;
    const now = wallClock();
    if (this.#tailLength > 0 && spansSeam(this.#tail, this.#tailLength, buf)) found++;
    let at = buf.indexOf(MARKER);
    while (at >= 0) {
      found++;
      if (recordLatency) record(buf, at, now);
      at = buf.indexOf(MARKER, at + MARKER.length);
    }
    if (buf.length >= this.#tail.length) {
      this.#tailLength = this.#tail.length;
      buf.copy(this.#tail, 0, buf.length - this.#tailLength);
    } else {
      const joined = Buffer.concat([this.#tail.subarray(0, this.#tailLength), buf]);
      this.#tailLength = Math.min(joined.length, this.#tail.length);
      joined.copy(this.#tail, 0, joined.length - this.#tailLength);
    }
    if (found > 0) {
      this.count += found;
      lastMarkerAt = now;
    }
  }
}

const connections: Connection[] = [];

function openAll(port: number, path: string, count: number, concurrency: number): Promise<LoadReplies["connect"]> {
  return new Promise((resolve) => {
    const started = wallClock();
    let opened = 0;
    let settled = 0;
    let failed = 0;
    const more = (): void => {
      while (opened < count && opened - settled < concurrency) {
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
  connect: ({ port, path, count, concurrency }) => openAll(port, path, count, concurrency),
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
};

process.on("message", (message: Envelope<LoadRequest>) => {
  const handler = handlers[message.body.cmd] as (req: LoadRequest) => Promise<unknown>;
  handler(message.body).then(
    (body) => process.send?.({ id: message.id, ok: true, body } satisfies Reply),
    (error: unknown) => process.send?.({ id: message.id, ok: false, error: String(error) } satisfies Reply),
  );
});
process.on("disconnect", () => process.exit(0));
process.send?.({ listening: 0 });
