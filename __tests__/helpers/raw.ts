import net from "node:net";

/** A raw TCP connection to a test server, for what an HTTP client library will not send (pipelining). */
export class RawConnection {
  /** Every byte received, as text. */
  received = "";
  closed = false;
  readonly #socket: net.Socket;
  #waiters: { check: () => boolean; resolve: () => void }[] = [];

  private constructor(socket: net.Socket) {
    this.#socket = socket;
    socket.setEncoding("utf8");
    socket.on("data", (chunk: string) => {
      this.received += chunk;
      this.#notify();
    });
    socket.on("close", () => {
      this.closed = true;
      this.#notify();
    });
    socket.on("error", () => {});
  }

  /** Connects to `url`'s host and port. */
  static open(url: string): Promise<RawConnection> {
    const { hostname, port } = new URL(url);
    return new Promise((resolve, reject) => {
      const socket = net.connect(Number(port), hostname, () => resolve(new RawConnection(socket)));
      socket.once("error", reject);
    });
  }

  /** Sends `count` GET requests for `path` in one write, without waiting for any answer. */
  pipeline(path: string, count: number, headers: Record<string, string> = {}): void {
    const extra = Object.entries(headers)
      .map(([name, value]) => `${name}: ${value}\r\n`)
      .join("");
    this.#socket.write(`GET ${path} HTTP/1.1\r\nHost: localhost\r\n${extra}\r\n`.repeat(count));
  }

  /** Resolves once `text` was received; rejects after `timeoutMs`. */
  receivedText(text: string, timeoutMs = 5000): Promise<void> {
    return this.#until(() => this.received.includes(text), JSON.stringify(text), timeoutMs);
  }

  /** Resolves once the server closed the connection. */
  end(timeoutMs = 5000): Promise<void> {
    return this.#until(() => this.closed, "the connection to close", timeoutMs);
  }

  /** Drops the connection at once, as a client that goes away does. */
  destroy(): void {
    this.#socket.destroy();
  }

  #until(check: () => boolean, what: string, timeoutMs: number): Promise<void> {
    if (check()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiters = this.#waiters.filter((w) => w !== waiter);
        reject(
          new Error(`timed out after ${timeoutMs} ms waiting for ${what}; received ${this.received.length} bytes`),
        );
      }, timeoutMs);
      const waiter = {
        check,
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
      };
      this.#waiters.push(waiter);
    });
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
