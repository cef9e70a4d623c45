/** Starting the benchmark's child processes and talking to them over IPC. */
import { type ChildProcess, spawn } from "node:child_process";
import { join } from "node:path";
import type { Envelope, ListeningMessage, Reply } from "./protocol";

/** Open file descriptors asked for in each child: 10,000 sockets need more than many defaults allow. */
const FD_LIMIT = 65536;

/** Where the children's compiled scripts go: under node_modules, so that they resolve its packages. */
const BUILD_DIR = join(__dirname, "..", "node_modules", ".cache", "runcast-bench");

/** The child scripts, by the name `Child.start` takes. */
export type ChildScript = "server" | "load";

/**
 * Compiles the child scripts (bench/server.ts, bench/load.ts and what they import) to plain
 * JavaScript, once per benchmark run. The children then run without a TypeScript compiler
 * loaded: its code and garbage would otherwise sit in every server's heap and resident
 * pages, and blur the memory measured per connection.
 */
export async function compileChildren(): Promise<void> {
  const { build } = await import("esbuild");
  await build({
    entryPoints: [join(__dirname, "server.ts"), join(__dirname, "load.ts")],
    outdir: BUILD_DIR,
    bundle: true,
    packages: "external",
    platform: "node",
    format: "cjs",
    target: "node20",
    logLevel: "warning",
  });
}

/** A child process of the benchmark, answering requests over IPC. */
export class Child<Req extends { cmd: string }, Replies extends { [K in Req["cmd"]]: unknown }> {
  readonly #process: ChildProcess;
  readonly #pending = new Map<number, { resolve: (body: unknown) => void; reject: (error: Error) => void }>();
  #nextId = 1;
  #exited = false;

  private constructor(child: ChildProcess) {
    this.#process = child;
    child.on("message", (message: Reply | ListeningMessage) => {
      if (!("id" in message)) return;
      const pending = this.#pending.get(message.id);
      if (pending === undefined) return;
      this.#pending.delete(message.id);
      if (message.ok) pending.resolve(message.body);
      else pending.reject(new Error(message.error));
    });
    child.on("exit", (code, signal) => {
      this.#exited = true;
      for (const pending of this.#pending.values()) pending.reject(new Error(`child exited (${code ?? signal})`));
      this.#pending.clear();
    });
  }

  /**
   * Starts `node <script> ...args` (as compiled by `compileChildren`) through a shell that
   * first raises its file descriptor limit as far as allowed, and resolves with the port it
   * reports once ready.
   */
  static async start<Req extends { cmd: string }, Replies extends { [K in Req["cmd"]]: unknown }>(
    script: ChildScript,
    args: readonly string[],
    nodeFlags: readonly string[] = [],
  ): Promise<{ child: Child<Req, Replies>; port: number }> {
    const node = [process.execPath, ...nodeFlags, join(BUILD_DIR, `${script}.js`)];
    const raise = `ulimit -n ${FD_LIMIT} 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null; exec "$@"`;
    const proc = spawn("/bin/sh", ["-c", raise, "sh", ...node, ...args], {
      stdio: ["ignore", "inherit", "inherit", "ipc"],
      cwd: join(__dirname, ".."),
    });
    const child = new Child<Req, Replies>(proc);
    const port = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${script} did not start`)), 30_000);
      proc.on("message", (message: Reply | ListeningMessage) => {
        if ("listening" in message) {
          clearTimeout(timer);
          resolve(message.listening);
        }
      });
      proc.on("exit", (code) => {
        clearTimeout(timer);
        reject(new Error(`${script} exited with ${code}`));
      });
    });
    return { child, port };
  }

  /** Sends a request and resolves with its reply; rejects after `timeoutMs`. */
  request<K extends Req["cmd"]>(body: Extract<Req, { cmd: K }>, timeoutMs = 120_000): Promise<Replies[K]> {
    if (this.#exited) return Promise.reject(new Error("child exited"));
    const id = this.#nextId++;
    return new Promise<Replies[K]>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new Error(`${body.cmd} timed out after ${timeoutMs} ms`));
      }, timeoutMs);
      this.#pending.set(id, {
        resolve: (value) => {
          clearTimeout(timer);
          resolve(value as Replies[K]);
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      });
      this.#process.send({ id, body } satisfies Envelope<Req>);
    });
  }

  /**
   * Stops the child and resolves once it exited: it exits by itself when its IPC channel
   * closes (writing any `--cpu-prof` profile), and is killed if it has not within 10 s.
   */
  stop(): Promise<void> {
    if (this.#exited) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(() => this.#process.kill("SIGKILL"), 10_000);
      this.#process.once("exit", () => {
        clearTimeout(timer);
        resolve();
      });
      this.#process.disconnect();
    });
  }
}

/**
 * In a child: answers each request from the benchmark with its handler's result (or error),
 * and exits once the benchmark goes away.
 */
export function answerRequests<Req extends { cmd: string }>(
  handlers: {
    [K in Req["cmd"]]: (req: Extract<Req, { cmd: K }>) => Promise<unknown>;
  },
): void {
  process.on("message", (message: Envelope<Req>) => {
    const handler = handlers[message.body.cmd as Req["cmd"]] as (req: Req) => Promise<unknown>;
    handler(message.body).then(
      (body) => process.send?.({ id: message.id, ok: true, body } satisfies Reply),
      (error: unknown) => process.send?.({ id: message.id, ok: false, error: String(error) } satisfies Reply),
    );
  });
  process.on("disconnect", () => process.exit(0));
}
