import { type ChildProcess, fork } from "node:child_process";
import path from "node:path";
import { within } from "./server";

/** The parent side of helpers/load-server.ts: a runcast server in a process of its own. */
export class LoadServer {
  readonly #child: ChildProcess;
  readonly #pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  #next = 0;
  url = "";

  private constructor(child: ChildProcess) {
    this.#child = child;
    child.on("message", (m: { id?: number; result?: unknown; error?: string }) => {
      const waiting = m.id === undefined ? undefined : this.#pending.get(m.id);
      if (waiting === undefined || m.id === undefined) return;
      this.#pending.delete(m.id);
      if (m.error !== undefined) waiting.reject(new Error(m.error));
      else waiting.resolve(m.result);
    });
    child.once("exit", (code) => {
      for (const { reject } of this.#pending.values()) reject(new Error(`the load server exited (${code})`));
      this.#pending.clear();
    });
  }

  /** Starts the process and the scenario in it (see the `start` op of helpers/load-server.ts). */
  static async start(args: Record<string, unknown>): Promise<{ server: LoadServer; lastId: string | undefined }> {
    const child = fork(path.join(__dirname, "load-server.ts"), [], {
      execArgv: ["-r", "ts-node/register/transpile-only"],
      env: {
        ...process.env,
        TS_NODE_COMPILER_OPTIONS: JSON.stringify({ module: "commonjs", moduleResolution: "node" }),
      },
      stdio: ["ignore", "inherit", "inherit", "ipc"],
    });
    const server = new LoadServer(child);
    await within(
      new Promise<void>((resolve) => child.once("message", () => resolve())),
      "the load server to start",
      60_000,
    );
    const { port, lastId } = (await server.call("start", args, 120_000)) as { port: number; lastId?: string };
    server.url = `http://127.0.0.1:${port}`;
    return { server, lastId };
  }

  call<T = unknown>(op: string, args: Record<string, unknown> = {}, timeoutMs = 30_000): Promise<T> {
    const id = this.#next++;
    const answer = new Promise<T>((resolve, reject) => {
      this.#pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
    });
    this.#child.send({ id, op, args });
    return within(answer, `the load server's answer to ${op}`, timeoutMs);
  }

  async stop(): Promise<void> {
    if (this.#child.exitCode !== null) return;
    const exited = new Promise<void>((resolve) => this.#child.once("exit", () => resolve()));
    await this.call("close").catch(() => undefined);
    this.#child.kill();
    await exited;
  }
}
