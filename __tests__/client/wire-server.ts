import http from "node:http";
import type { AddressInfo } from "node:net";

/** One request the wire server received. */
export interface WireRequest {
  /** 0 for the first request, then 1, 2, ... */
  n: number;
  url: URL;
  /** `Last-Event-ID` header, or the `lastEventId` query parameter. */
  lastEventId: string | undefined;
  res: http.ServerResponse;
}

/** SSE bytes of one frame, exactly as DESIGN.md writes them (an `id:` line only when given). */
export function sseFrame(event: string, data: unknown, id?: string): string {
  return `event: ${event}\n${id === undefined ? "" : `id: ${id}\n`}data: ${JSON.stringify(data)}\n\n`;
}

/** A run state, as frames carry it. */
export function runState(id: string, completed: number, status = "running"): Record<string, unknown> {
  return { id, status, completed_units: completed };
}

/** A run event, as frames carry it. */
export function runEvent(runId: string, n: number): Record<string, unknown> {
  return { type: "unit.progress", run_id: runId, ts: "2026-01-01T00:00:00Z", n };
}

/**
 * A plain node:http server that answers every request with whatever the test writes: the
 * wire format of a feature, byte for byte, before (or without) the real server implementing it.
 * Responses stay open until the test ends them or calls `drop()`.
 */
export class WireServer {
  readonly requests: WireRequest[] = [];
  url = "";
  readonly #server: http.Server;
  #waiters: Array<() => void> = [];

  private constructor(answer: (request: WireRequest) => void) {
    this.#server = http.createServer((req, res) => {
      const url = new URL(req.url ?? "/", "http://localhost");
      const header = req.headers["last-event-id"];
      const request: WireRequest = {
        n: this.requests.length,
        url,
        lastEventId: typeof header === "string" ? header : (url.searchParams.get("lastEventId") ?? undefined),
        res,
      };
      this.requests.push(request);
      answer(request);
      for (const wake of this.#waiters.splice(0)) wake();
    });
  }

  /** Starts a server on 127.0.0.1; `answer` is called for every request. */
  static async start(answer: (request: WireRequest) => void): Promise<WireServer> {
    const wire = new WireServer(answer);
    await new Promise<void>((resolve) => wire.#server.listen(0, "127.0.0.1", resolve));
    wire.url = `http://127.0.0.1:${(wire.#server.address() as AddressInfo).port}`;
    return wire;
  }

  /** Starts an event stream on `res` (status 200, SSE headers). */
  static open(res: http.ServerResponse): void {
    res.writeHead(200, { "Content-Type": "text/event-stream", "Cache-Control": "no-cache, no-transform" });
    res.flushHeaders();
  }

  /** Resolves once `count` requests have arrived; rejects after `timeoutMs`. */
  requestCount(count: number, timeoutMs = 5000): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`timed out waiting for request ${count}; got ${this.requests.length}`)),
        timeoutMs,
      );
      const check = (): void => {
        if (this.requests.length >= count) {
          clearTimeout(timer);
          resolve();
        } else this.#waiters.push(check);
      };
      check();
    });
  }

  /** Destroys every connection, as a network drop would; the server keeps listening. */
  drop(): void {
    this.#server.closeAllConnections();
  }

  async close(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}
