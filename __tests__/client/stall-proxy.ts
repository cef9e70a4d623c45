import net from "node:net";

/**
 * A TCP proxy in front of a server that can stop forwarding without closing anything, as a
 * NAT that dropped its state or a laptop that went to sleep would: `stall()` makes every open
 * connection a black hole in both directions, while new connections pass as usual.
 */
export class StallProxy {
  url = "";
  readonly #server: net.Server;
  readonly #pairs = new Set<{ client: net.Socket; upstream: net.Socket; stalled: boolean }>();

  private constructor(targetPort: number) {
    this.#server = net.createServer((client) => {
      const upstream = net.connect(targetPort, "127.0.0.1");
      const pair = { client, upstream, stalled: false };
      this.#pairs.add(pair);
      client.on("data", (chunk) => {
        if (!pair.stalled) upstream.write(chunk);
      });
      upstream.on("data", (chunk) => {
        if (!pair.stalled) client.write(chunk);
      });
      const end = (): void => {
        this.#pairs.delete(pair);
        client.destroy();
        upstream.destroy();
      };
      client.on("close", end);
      upstream.on("close", end);
      client.on("error", end);
      upstream.on("error", end);
    });
  }

  static async start(targetUrl: string): Promise<StallProxy> {
    const proxy = new StallProxy(Number(new URL(targetUrl).port));
    await new Promise<void>((resolve) => proxy.#server.listen(0, "127.0.0.1", resolve));
    proxy.url = `http://127.0.0.1:${(proxy.#server.address() as net.AddressInfo).port}`;
    return proxy;
  }

  /** Every connection open now stops forwarding bytes, both ways, and stays open. */
  stall(): void {
    for (const pair of this.#pairs) pair.stalled = true;
  }

  async close(): Promise<void> {
    for (const { client, upstream } of this.#pairs) {
      client.destroy();
      upstream.destroy();
    }
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}
