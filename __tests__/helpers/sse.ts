import http from "node:http";
import { createParser, type EventSourceMessage } from "eventsource-parser";

/** One parsed SSE frame. */
export interface SseFrame {
  event: string;
  id: string | undefined;
  data: string;
  /** `data` parsed as JSON. */
  json: Record<string, unknown>;
}

interface Waiter {
  check: () => boolean;
  resolve: () => void;
}

/**
 * A raw SSE reader over `http.get`: every frame is parsed by a spec-compliant parser
 * (eventsource-parser), comments and `retry:` are kept, and tests wait for conditions with
 * a timeout rather than sleeping.
 */
export class SseStream {
  readonly frames: SseFrame[] = [];
  readonly comments: string[] = [];
  retry: number | undefined;
  status = 0;
  headers: http.IncomingHttpHeaders = {};
  ended = false;
  /** Raw bytes received, for byte-level assertions. */
  raw = "";
  #req: http.ClientRequest | undefined;
  #res: http.IncomingMessage | undefined;
  #waiters: Waiter[] = [];

  /** Opens a stream; resolves when the response head arrives. */
  static open(url: string, headers: Record<string, string> = {}): Promise<SseStream> {
    const stream = new SseStream();
    return new Promise((resolve, reject) => {
      const parser = createParser({
        onEvent: (message: EventSourceMessage) => {
          stream.frames.push({
            event: message.event ?? "message",
            id: message.id,
            data: message.data,
            json: JSON.parse(message.data) as Record<string, unknown>,
          });
          stream.#notify();
        },
        onComment: (comment) => {
          stream.comments.push(comment);
          stream.#notify();
        },
        onRetry: (ms) => {
          stream.retry = ms;
        },
      });
      const req = http.get(url, { headers, agent: false }, (res) => {
        stream.#res = res;
        stream.status = res.statusCode ?? 0;
        stream.headers = res.headers;
        res.setEncoding("utf8");
        res.on("data", (chunk: string) => {
          stream.raw += chunk;
          parser.feed(chunk);
        });
        const finish = (): void => {
          stream.ended = true;
          stream.#notify();
        };
        res.on("end", finish);
        res.on("close", finish);
        resolve(stream);
      });
      stream.#req = req;
      req.on("error", (error) => {
        stream.ended = true;
        stream.#notify();
        reject(error);
      });
    });
  }

  /** Frames of one SSE event name. */
  of(event: string): SseFrame[] {
    return this.frames.filter((frame) => frame.event === event);
  }

  /** Resolves once `check()` holds; rejects after `timeoutMs` with `what` in the message. */
  until(check: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
    if (check()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiters = this.#waiters.filter((w) => w !== waiter);
        reject(
          new Error(
            `timed out after ${timeoutMs} ms waiting for ${what}; got ${this.frames.length} frames: ${this.frames.map((f) => f.event).join(",")}`,
          ),
        );
      }, timeoutMs);
      const waiter: Waiter = {
        check,
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
      };
      this.#waiters.push(waiter);
    });
  }

  /** Waits until at least `count` frames arrived. */
  frameCount(count: number, timeoutMs?: number): Promise<void> {
    return this.until(() => this.frames.length >= count, `${count} frames`, timeoutMs);
  }

  /** Waits until the server ended the response. */
  end(timeoutMs?: number): Promise<void> {
    return this.until(() => this.ended, "the end of the response", timeoutMs);
  }

  /** Stops reading without closing, so the server's writes back up (a slow client). */
  pause(): void {
    this.#res?.pause();
  }

  /** Closes the connection from the client side. */
  close(): void {
    this.#req?.destroy();
    this.#res?.destroy();
  }

  #notify(): void {
    for (const waiter of [...this.#waiters]) {
      if (waiter.check()) {
        this.#waiters = this.#waiters.filter((w) => w !== waiter);
        waiter.resolve();
      }
    }
  }
}
