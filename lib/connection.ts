import type { ServerResponse } from "node:http";
import { Connection } from "better-sse";

/** The part of `AbortSignal` better-sse's `Session` uses to learn of a disconnect. */
class DisconnectSignal {
  listener: (() => void) | undefined;
  addEventListener(_type: "abort", listener: () => void): void {
    this.listener = listener;
  }
  removeEventListener(): void {
    this.listener = undefined;
  }
}

/** better-sse only reads `searchParams` of the URL (for its padding options): give it none. */
const NO_URL = { searchParams: new URLSearchParams() } as unknown as URL;
/** Never read by runcast; better-sse only hands it out through `Session#getResponse`. */
const NO_RESPONSE = new Response(null);

/** Where a {@link ResponseConnection} sends the session's writes. */
export interface ChunkSink {
  write(text: string): void;
}

/**
 * A lean better-sse `Connection` over a Node response. better-sse's default adapter builds
 * a Fetch `Request`, `Response`, `Headers`, `URL` and `AbortController` per session; runcast
 * reads the request itself, so this adapter keeps only the response and a disconnect hook.
 * Writes go to `sink`, the client's own (backpressure-aware) write path: an object rather
 * than a callback, so no closure is kept per connection.
 */
export class ResponseConnection extends Connection {
  readonly url = NO_URL;
  readonly response = NO_RESPONSE;
  readonly request: Request;
  readonly #signal = new DisconnectSignal();
  readonly #res: ServerResponse;
  readonly #headers: Record<string, string>;
  readonly #sink: ChunkSink;
  readonly #preamble: string;

  /**
   * @param preamble - SSE text written with the head, before any frame: the `retry:` line,
   * which then shares the first frame's block (see `retryField`).
   */
  constructor(res: ServerResponse, headers: Record<string, string>, sink: ChunkSink, preamble = "") {
    super();
    this.#res = res;
    this.#headers = headers;
    this.#sink = sink;
    this.#preamble = preamble;
    // Session only touches `request.signal` (trustClientEventId is off), so a shim stands in for a Fetch Request.
    this.request = { signal: this.#signal } as unknown as Request;
  }

  sendHead(): void {
    this.#res.writeHead(200, this.#headers);
    // The head goes out with the first write, so the preamble and the head leave together,
    // before whatever the stream's start writes first.
    this.#sink.write(this.#preamble);
  }

  sendChunk(chunk: string): void {
    this.#sink.write(chunk);
  }

  cleanup(): void {}

  /** Tells the session its client is gone (it then emits `disconnected`). */
  disconnect(): void {
    this.#signal.listener?.();
  }
}
