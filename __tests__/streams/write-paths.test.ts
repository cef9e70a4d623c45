import http, { type ServerResponse } from "node:http";
import { type AddressInfo, connect, type Socket } from "node:net";
import { createGunzip, createGzip, type Gunzip, constants as zlibConstants } from "node:zlib";
import { createParser, type EventSourceMessage } from "eventsource-parser";
import type express from "express";
import { MemoryRunSource, type SseRouterOptions } from "../../lib/index";
import { eventually, serve, type TestServer } from "../helpers/server";

/** Text whose UTF-8 length differs from its UTF-16 length: a chunk size counted in code units would be wrong. */
const WIDE = "naïve — 日本語 🎉 ✓";

/**
 * An HTTP response read off a raw socket, so the test sees the exact bytes: the head, the
 * chunked framing (checked strictly: every size line must match the bytes that follow), and
 * the body, gunzipped when the response says gzip, parsed by a spec SSE parser.
 */
class RawResponse {
  status = 0;
  headers: Record<string, string> = {};
  /** Byte sizes of the body's HTTP chunks, in order; the last is 0 once the body is complete. */
  readonly chunkSizes: number[] = [];
  readonly frames: { event: string; id: string | undefined; data: string }[] = [];
  readonly comments: string[] = [];
  /** The response body ended: the terminating chunk arrived, or a close-delimited body's socket closed. */
  ended = false;
  /** Bytes after the terminating chunk: the next response on a kept-alive connection. */
  rest = Buffer.alloc(0);
  error: Error | undefined;
  readonly socket: Socket | undefined;
  #buffer = Buffer.alloc(0);
  #headDone = false;
  #chunked = false;
  #gunzip: Gunzip | undefined;
  readonly #decoder = new TextDecoder();
  readonly #parser = createParser({
    onEvent: (message: EventSourceMessage) =>
      this.frames.push({ event: message.event ?? "message", id: message.id, data: message.data }),
    onComment: (comment) => this.comments.push(comment),
  });

  private constructor(socket?: Socket) {
    this.socket = socket;
    socket?.on("data", (data: Buffer) => this.feed(data));
    socket?.on("close", () => {
      if (this.#headDone && !this.#chunked) this.#endBody();
    });
    socket?.on("error", () => {});
  }

  /** Parses bytes already received (a response that followed another on its connection). */
  static parse(bytes: Buffer): RawResponse {
    const response = new RawResponse();
    response.feed(bytes);
    return response;
  }

  /** Sends `GET path` in the given HTTP version (plus any raw extra request text) and resolves once connected. */
  static open(port: number, path: string, version: "1.0" | "1.1", extra = ""): Promise<RawResponse> {
    return new Promise((resolve) => {
      const socket = connect({ host: "127.0.0.1", port }, () => {
        socket.write(`GET ${path} HTTP/${version}\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n${extra}`);
        resolve(response);
      });
      const response = new RawResponse(socket);
    });
  }

  /** The frames' `data` parsed as JSON. */
  get json(): Record<string, unknown>[] {
    return this.frames.map((frame) => JSON.parse(frame.data) as Record<string, unknown>);
  }

  /** The socket, which a test of a raw connection always has. */
  get connection(): Socket {
    if (this.socket === undefined) throw new Error("no socket");
    return this.socket;
  }

  close(): void {
    this.socket?.destroy();
  }

  feed(data: Buffer): void {
    if (this.ended) {
      this.rest = Buffer.concat([this.rest, data]);
      return;
    }
    this.#buffer = Buffer.concat([this.#buffer, data]);
    try {
      if (!this.#headDone) this.#readHead();
      if (this.#headDone) this.#readBody();
    } catch (error) {
      this.error = error as Error;
      this.socket?.destroy();
    }
  }

  #readHead(): void {
    const end = this.#buffer.indexOf("\r\n\r\n");
    if (end < 0) return;
    const [statusLine = "", ...lines] = this.#buffer.subarray(0, end).toString("latin1").split("\r\n");
    this.status = Number(statusLine.split(" ")[1]);
    for (const line of lines) {
      const colon = line.indexOf(":");
      this.headers[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim();
    }
    this.#chunked = this.headers["transfer-encoding"] === "chunked";
    if (this.headers["content-encoding"] === "gzip") {
      this.#gunzip = createGunzip();
      this.#gunzip.on("data", (text: Buffer) => this.#parse(text));
    }
    this.#buffer = this.#buffer.subarray(end + 4);
    this.#headDone = true;
  }

  #readBody(): void {
    if (!this.#chunked) {
      this.#body(this.#buffer);
      this.#buffer = Buffer.alloc(0);
      return;
    }
    for (;;) {
      const lineEnd = this.#buffer.indexOf("\r\n");
      if (lineEnd < 0) return;
      const sizeLine = this.#buffer.subarray(0, lineEnd).toString("latin1");
      if (!/^[0-9a-f]+$/i.test(sizeLine)) throw new Error(`bad chunk size line ${JSON.stringify(sizeLine)}`);
      const size = Number.parseInt(sizeLine, 16);
      const start = lineEnd + 2;
      if (size === 0) {
        // The last chunk: no trailers are sent, so an empty line ends the body.
        if (this.#buffer.length < start + 2) return;
        if (this.#buffer.subarray(start, start + 2).toString("latin1") !== "\r\n")
          throw new Error("no empty line after the last chunk");
        this.chunkSizes.push(0);
        this.rest = this.#buffer.subarray(start + 2);
        this.#buffer = Buffer.alloc(0);
        this.#endBody();
        return;
      }
      if (this.#buffer.length < start + size + 2) return;
      if (this.#buffer.subarray(start + size, start + size + 2).toString("latin1") !== "\r\n")
        throw new Error(`chunk of declared size ${size} is not followed by CRLF`);
      this.chunkSizes.push(size);
      this.#body(this.#buffer.subarray(start, start + size));
      this.#buffer = this.#buffer.subarray(start + size + 2);
    }
  }

  #body(bytes: Buffer): void {
    if (bytes.length === 0) return;
    if (this.#gunzip !== undefined) this.#gunzip.write(bytes);
    else this.#parse(bytes);
  }

  #parse(bytes: Buffer): void {
    this.#parser.feed(this.#decoder.decode(bytes, { stream: true }));
  }

  #endBody(): void {
    if (this.ended) return;
    this.ended = true;
    this.#gunzip?.end();
  }
}

/** A compression middleware in miniature: gzip through a wrapped `res.write`/`res.end`, as `compression` does. */
function gzipMiddleware(_req: express.Request, res: express.Response, next: express.NextFunction): void {
  const write = res.write.bind(res) as (chunk: Buffer) => boolean;
  const end = res.end.bind(res) as () => void;
  const gzip = createGzip({ flush: zlibConstants.Z_SYNC_FLUSH });
  gzip.on("data", (chunk: Buffer) => write(chunk));
  gzip.on("end", () => end());
  res.setHeader("Content-Encoding", "gzip");
  res.write = ((chunk: string | Buffer) => gzip.write(chunk)) as typeof res.write;
  res.end = (() => {
    gzip.end();
    return res;
  }) as typeof res.end;
  next();
}

describe("the two write paths", () => {
  let source: MemoryRunSource;
  let t: TestServer;
  let port: number;
  /** Every response the app handled, in order. */
  let responses: ServerResponse[];
  /** The responses `res.write` was called on, once per call. */
  let resWrites: ServerResponse[];
  let restore: () => void;

  async function start(
    before?: (app: express.Express) => void,
    options: SseRouterOptions = { heartbeatMs: 60_000, maxBufferedBytes: 64 * 1024 },
  ): Promise<void> {
    t = await serve(source, options, (app) => {
      app.use((_req, res, next) => {
        responses.push(res);
        next();
      });
      before?.(app);
    });
    port = (t.server.address() as AddressInfo).port;
  }

  /** Opens run "r"'s stream on a raw socket and waits for its initial state. */
  async function openRunStream(version: "1.0" | "1.1" = "1.1"): Promise<RawResponse> {
    const response = await RawResponse.open(port, "/api/runs/r/stream", version);
    await eventually(() => response.frames.length === 1, "the initial state");
    return response;
  }

  /** How many times `res.write` was called on `res` since the last reset. */
  function writesTo(res: ServerResponse | undefined): number {
    return resWrites.filter((r) => r === res).length;
  }

  beforeEach(() => {
    source = new MemoryRunSource();
    source.createRun({ id: "r", total_units: 3 });
    responses = [];
    resWrites = [];
    // Watch the prototype's `write`, which every response inherits: runcast's test for a
    // wrapped `res.write` still sees the one it expects, so the socket path stays open.
    const original = http.ServerResponse.prototype.write;
    http.ServerResponse.prototype.write = function (this: ServerResponse, ...args: Parameters<typeof original>) {
      resWrites.push(this);
      return original.apply(this, args);
    } as typeof original;
    restore = () => {
      http.ServerResponse.prototype.write = original;
    };
  });
  afterEach(async () => {
    restore();
    await t.close();
  });

  /** Records events of several sizes, some in one tick (one coalesced chunk), some in separate ticks. */
  async function recordMix(): Promise<string[]> {
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push(source.recordEvent("r", { type: "unit.progress", unit: WIDE, n: i }).id ?? "");
    await new Promise((resolve) => setImmediate(resolve));
    ids.push(source.recordEvent("r", { type: "unit.done", unit: "auth", note: "x".repeat(5000), n: 3 }).id ?? "");
    await new Promise((resolve) => setImmediate(resolve));
    ids.push(source.recordEvent("r", { type: "unit.progress", unit: WIDE, n: 4 }).id ?? "");
    return ids;
  }

  /** Records the mix, completes run "r" and waits for the response to end; returns the mix's ids. */
  async function recordMixThenComplete(response: RawResponse): Promise<string[]> {
    const ids = await recordMix();
    source.completeRun("r", { status: "completed", completed_units: 3 });
    await eventually(() => response.ended, "the end of the response");
    return ids;
  }

  function expectMix(response: RawResponse, ids: string[]): void {
    expect(response.error).toBeUndefined();
    expect(response.frames.map((f) => f.event)).toEqual([
      "state",
      "event",
      "event",
      "event",
      "event",
      "event",
      "complete",
    ]);
    expect(response.frames.slice(1, 6).map((f) => f.id)).toEqual(ids);
    expect(response.json.slice(1, 6).map((d) => d.n)).toEqual([0, 1, 2, 3, 4]);
    expect(response.json[1]?.unit).toBe(WIDE);
    expect(response.json[6]).toMatchObject({ id: "r", status: "completed", completed_units: 3 });
  }

  it("HTTP/1.1: live frames are pre-framed chunks written to the socket, byte-correct, and the response still ends cleanly", async () => {
    await start();
    const response = await openRunStream();
    const res = responses.at(-1);
    resWrites = [];

    const ids = await recordMixThenComplete(response);

    expectMix(response, ids);
    expect(response.headers["transfer-encoding"]).toBe("chunked");
    // Not one live frame went through res.write: they all took the socket path.
    expect(writesTo(res)).toBe(0);
    // The terminating chunk came last, and the connection is kept alive: the framing ended exactly there.
    expect(response.chunkSizes.at(-1)).toBe(0);
    expect(response.rest.length).toBe(0);
    expect(response.connection.destroyed).toBe(false);
    response.close();
  });

  it("HTTP/1.1: the kept-alive connection serves the next request after a stream ended on the socket path", async () => {
    await start();
    const response = await openRunStream();
    source.recordEvent("r", { type: "unit.progress", unit: WIDE });
    source.completeRun("r", { status: "completed", completed_units: 3 });
    await eventually(() => response.ended, "the end of the stream");
    response.connection.write("GET /api/runs/missing/stream HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    await eventually(() => response.rest.includes("run_not_found"), "the second response");
    expect(response.rest.toString("latin1")).toMatch(/^HTTP\/1\.1 404 /);
    response.close();
  });

  it("HTTP/1.1: heartbeats take the socket path too", async () => {
    await start(undefined, { heartbeatMs: 20 });
    const response = await openRunStream();
    resWrites = [];
    await eventually(() => response.comments.length >= 2, "two heartbeats");
    source.recordEvent("r", { type: "unit.progress", unit: WIDE });
    await eventually(() => response.frames.length === 2, "an event after the heartbeats");
    expect(response.error).toBeUndefined();
    expect(writesTo(responses.at(-1))).toBe(0);
    response.close();
  });

  it("HTTP/1.0: no chunked encoding, so frames go through res.write; the body ends when the run does", async () => {
    await start();
    const response = await openRunStream("1.0");
    const res = responses.at(-1);
    resWrites = [];

    const ids = await recordMixThenComplete(response);

    expectMix(response, ids);
    expect(response.headers["transfer-encoding"]).toBeUndefined();
    expect(response.chunkSizes).toEqual([]);
    expect(writesTo(res)).toBeGreaterThanOrEqual(3);
  });

  it("behind a compression middleware (Content-Encoding set, res.write wrapped): frames go through its wrapper", async () => {
    await start((app) => app.use(gzipMiddleware));
    const response = await openRunStream();
    const ids = await recordMix();
    source.completeRun("r", { status: "completed", completed_units: 3 });
    await eventually(() => response.ended && response.frames.length === 7, "the end of the response");

    expect(response.headers["content-encoding"]).toBe("gzip");
    expectMix(response, ids);
  });

  it("a wrapped res.write alone (no content encoding) keeps the fallback: the wrapper sees every byte", async () => {
    let seen = "";
    await start((app) =>
      app.use((_req, res, next) => {
        const write = res.write.bind(res) as (chunk: string) => boolean;
        res.write = ((chunk: string) => {
          seen += chunk;
          return write(chunk);
        }) as typeof res.write;
        next();
      }),
    );
    const response = await openRunStream();
    const ids = await recordMixThenComplete(response);

    expectMix(response, ids);
    for (const id of ids) expect(seen).toContain(`id: ${id}\n`);
  });

  it("a Content-Encoding header alone (res.write untouched) keeps the fallback", async () => {
    await start((app) =>
      app.use((_req, res, next) => {
        res.setHeader("Content-Encoding", "identity");
        next();
      }),
    );
    const response = await openRunStream();
    const res = responses.at(-1);
    resWrites = [];
    const ids = await recordMixThenComplete(response);

    expectMix(response, ids);
    expect(writesTo(res)).toBeGreaterThanOrEqual(3);
  });

  it("a pipelined request waits for its turn, then streams on the same connection through the socket path", async () => {
    source.createRun({ id: "first" });
    await start();
    // Two requests in one packet: the second response waits for the first to finish.
    const second = "GET /api/runs/r/stream HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n";
    const response = await RawResponse.open(port, "/api/runs/first/stream", "1.1", second);
    await eventually(() => response.frames.length === 1, "the first stream's state");
    await eventually(() => responses.length === 2, "the second request to arrive");
    const [, queued] = responses;
    expect(queued?.socket).toBeNull();
    // Not a client before its turn: nothing is queued or written for it meanwhile.
    expect(t.router.clientCount()).toBe(1);
    source.completeRun("first", { status: "completed" });
    await eventually(() => response.ended, "the end of the first stream");

    let next = RawResponse.parse(response.rest);
    await eventually(() => {
      next = RawResponse.parse(response.rest);
      return next.frames.length === 1;
    }, "the second stream's state");
    expect(t.router.clientCount("r")).toBe(1);
    resWrites = [];
    const ids = await recordMix();
    source.completeRun("r", { status: "completed", completed_units: 3 });
    await eventually(() => {
      next = RawResponse.parse(response.rest);
      return next.ended;
    }, "the end of the second stream");
    expect(next.status).toBe(200);
    expectMix(next, ids);
    expect(writesTo(queued)).toBe(0);
    response.close();
  });

  it("a live stream lets go of the Express router chain its request points to (req.next)", async () => {
    await start();
    const response = await openRunStream();
    const req = responses.at(-1)?.req as (http.IncomingMessage & { next?: unknown }) | undefined;
    expect(req).toBeDefined();
    expect(Object.hasOwn(req ?? {}, "next")).toBe(true);
    expect(req?.next).toBeUndefined();
    source.recordEvent("r", { type: "unit.progress", unit: WIDE });
    await eventually(() => response.frames.length === 2, "a live event");
    response.close();
  });

  it.each([
    ["HTTP/1.1, socket path", "1.1" as const],
    ["HTTP/1.0, res.write path", "1.0" as const],
  ])(
    "%s: a client that stops reading is cut off, and never slows the others",
    async (_name, version) => {
      await start();
      const slow = await RawResponse.open(port, "/api/runs/r/stream", version);
      const fast = await RawResponse.open(port, "/api/runs/r/stream", version);
      await eventually(() => slow.frames.length === 1 && fast.frames.length === 1, "both initial states");
      slow.connection.pause();

      let recorded = 0;
      const pad = "x".repeat(8 * 1024);
      await new Promise<void>((resolve, reject) => {
        const tick = (): void => {
          if (t.router.stats().slowClientsCutOff > 0) resolve();
          else if (recorded >= 4000) reject(new Error("the slow client was never cut off"));
          else {
            for (let i = 0; i < 20; i++) source.recordEvent("r", { type: "unit.progress", n: recorded++, pad });
            setImmediate(tick);
          }
        };
        tick();
      });
      expect(t.router.stats().slowClientsCutOff).toBe(1);
      await eventually(() => fast.frames.length === 1 + recorded, "every event at the fast client", 15_000);
      expect(fast.error).toBeUndefined();
      expect(fast.json.slice(1).map((d) => d.n)).toEqual([...Array(recorded).keys()]);
      slow.close();
      fast.close();
    },
    30_000,
  );
});
