import { type ChildProcess, execFileSync, fork, spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { readdir, rm } from "node:fs/promises";
import net from "node:net";
import path from "node:path";
import { Redis } from "ioredis";
import { RedisRunSource, type RedisRunSourceOptions } from "../../lib/redis";
import { compareEnvelopeIds } from "../../lib/source";
import type { SseFrame } from "../helpers/sse";

/** The Redis the tests use. */
export const REDIS_URL = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";

const ON_CI = process.env.CI === "true" || process.env.CI === "1";

/** Whether something answers PING (or refuses it for want of AUTH) at `url`; checked synchronously, once per file. */
function answers(url: string): boolean {
  const { hostname, port } = new URL(url);
  const probe = `
    const socket = require("node:net").connect(${Number(port || 6379)}, ${JSON.stringify(hostname || "127.0.0.1")});
    socket.setTimeout(2000, () => process.exit(1));
    socket.on("error", () => process.exit(1));
    socket.on("connect", () => socket.write("PING\\r\\n"));
    socket.on("data", (data) => process.exit(/^[+-]/.test(String(data)) ? 0 : 1));`;
  try {
    execFileSync(process.execPath, ["-e", probe], { stdio: "ignore", timeout: 5000 });
    return true;
  } catch {
    return false;
  }
}

/** Whether the Redis at {@link REDIS_URL} answers. */
export const redisReachable = answers(REDIS_URL);

/**
 * `describe` for suites that need Redis. Without one they fail under `CI=true` and are
 * skipped, loudly, elsewhere.
 */
export function describeRedis(name: string, body: () => void): void {
  if (redisReachable) {
    describe(name, body);
    return;
  }
  const message = `no Redis answers at ${REDIS_URL} (set REDIS_URL, or run scripts/ensure-redis.sh)`;
  if (ON_CI) {
    describe(name, () => {
      it("needs a Redis server", () => {
        throw new Error(`${message}; the Redis tests cannot be skipped under CI=true`);
      });
    });
    return;
  }
  const bar = "!".repeat(78);
  console.warn(`\n${bar}\n  SKIPPED "${name}": ${message}\n${bar}\n`);
  describe.skip(name, body);
}

/** A fresh key prefix, so test files never see each other's keys. */
export function newPrefix(label: string): string {
  return `runcast-test:${label}:${randomUUID().slice(0, 8)}`;
}

/** A connection for the tests' own checks. */
export function adminClient(url = REDIS_URL): Redis {
  return new Redis(url, { maxRetriesPerRequest: 3, protocol: 2, lazyConnect: false });
}

/** Deletes every key under `prefix`. */
export async function deleteKeys(redis: Redis, prefix: string): Promise<void> {
  let cursor = "0";
  do {
    const [next, keys] = await redis.scan(cursor, "MATCH", `${prefix}:*`, "COUNT", 1000);
    cursor = next;
    if (keys.length > 0) await redis.del(...keys);
  } while (cursor !== "0");
}

/** A suite's RedisRunSources, each with keys of its own under the suite's prefix, and an admin connection. */
export interface SuiteSources {
  /** The suite's key prefix; each source's keys are under `<prefix>:<n>`. */
  readonly prefix: string;
  /** The admin connection (open from `beforeAll` to `afterAll`). */
  readonly admin: Redis;
  /** A new source, on {@link REDIS_URL} unless `options.redis` is given; closed after the test. */
  source(options?: RedisRunSourceOptions): RedisRunSource;
}

/**
 * Sets up a suite whose tests create their own sources (call it in the `describe` body): the
 * sources are closed after each test, and every key under the suite's prefix deleted after all.
 */
export function sourcesPerTest(label: string): SuiteSources {
  const prefix = newPrefix(label);
  let admin: Redis | undefined;
  const sources: RedisRunSource[] = [];
  let count = 0;

  beforeAll(() => {
    admin = adminClient();
  });

  afterEach(async () => {
    await Promise.all(sources.splice(0).map((s) => s.close()));
  });

  afterAll(async () => {
    if (admin === undefined) return;
    await deleteKeys(admin, prefix);
    await admin.quit();
  });

  return {
    prefix,
    get admin(): Redis {
      if (admin === undefined) throw new Error("the admin connection opens in beforeAll");
      return admin;
    },
    source(options = {}) {
      const where = options.redis === undefined ? { url: REDIS_URL } : {};
      const created = new RedisRunSource({ ...where, prefix: `${prefix}:${count++}`, ...options });
      sources.push(created);
      return created;
    },
  };
}

/** Ids of the connections named `name` (the source names its own `<prefix>:commands` and `<prefix>:reader`). */
export async function connectionsNamed(redis: Redis, name: string): Promise<string[]> {
  const list = (await redis.call("CLIENT", "LIST")) as string;
  const ids: string[] = [];
  for (const line of list.split("\n")) {
    const fields = new Map(line.split(" ").map((pair) => pair.split("=", 2) as [string, string]));
    if (fields.get("name") === name) ids.push(fields.get("id") ?? "");
  }
  return ids;
}

/** Kills every connection named `name`; returns how many. */
export async function killConnections(redis: Redis, name: string): Promise<number> {
  const ids = await connectionsNamed(redis, name);
  for (const id of ids) await redis.call("CLIENT", "KILL", "ID", id);
  return ids.length;
}

/** A stream entry: id, type, run id, data. */
export interface LogEntry {
  id: string;
  type: string;
  runId: string;
  data: Record<string, unknown>;
}

/** Every entry of a source's global feed, or of one run's log. */
export async function readLog(redis: Redis, prefix: string, runId?: string): Promise<LogEntry[]> {
  const key = runId === undefined ? `${prefix}:log` : `${prefix}:log:{${runId}}`;
  const entries = await redis.xrange(key, "-", "+");
  return entries.map(([id, fields]) => {
    const map = new Map<string, string>();
    for (let i = 0; i + 1 < fields.length; i += 2) map.set(fields[i] as string, fields[i + 1] as string);
    return {
      id,
      type: map.get("t") ?? "",
      runId: map.get("r") ?? runId ?? "",
      data: JSON.parse(map.get("d") ?? "null") as Record<string, unknown>,
    };
  });
}

/** Rejects after `timeoutMs` unless `work` settles first; the timer never outlives it. */
export function within<T>(work: Promise<T>, what: string, timeoutMs: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms: ${what}`)), timeoutMs);
  });
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}

/** Collects what a listener receives; `until` waits (event-driven, with a timeout) for a count or a condition. */
export class Collector<T> {
  readonly items: T[] = [];
  readonly #waiters = new Set<() => void>();
  readonly listener = (item: T): void => {
    this.items.push(item);
    for (const waiter of [...this.#waiters]) waiter();
  };

  until(goal: number | ((items: readonly T[]) => boolean), timeoutMs = 10_000): Promise<void> {
    const reached = typeof goal === "number" ? () => this.items.length >= goal : () => goal(this.items);
    if (reached()) return Promise.resolve();
    let waiter: () => void = () => {};
    const done = new Promise<void>((resolve) => {
      waiter = () => {
        if (reached()) resolve();
      };
      this.#waiters.add(waiter);
    });
    const what = typeof goal === "number" ? `${goal} items` : "the expected items";
    return within(done, `${what} (got ${this.items.length})`, timeoutMs).finally(() => this.#waiters.delete(waiter));
  }
}

/** Resolves once `check()` holds, checking every few ms; for state only Redis knows (no event to wait for). */
export async function eventually(check: () => Promise<boolean>, what: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

// ---- child processes ----------------------------------------------------------------------

/** A message a fixture sends over IPC. */
export type FixtureMessage = { type: string } & Record<string, unknown>;

const FIXTURES = path.join(__dirname, "fixtures");

/**
 * The ioredis major this jest project runs on: jest.config.ts maps `ioredis` to the `ioredis5`
 * alias in one project and says so in `RUNCAST_IOREDIS_MAJOR`; 6 otherwise.
 */
export function expectedIoredisMajor(): number {
  return (globalThis as { RUNCAST_IOREDIS_MAJOR?: number }).RUNCAST_IOREDIS_MAJOR ?? 6;
}

/**
 * A fixture in its own Node process (TypeScript through ts-node), driven over IPC: `ready`
 * when it is up, RPC replies to `request`, anything else kept in `messages`.
 */
export class Fixture {
  readonly messages: FixtureMessage[] = [];
  readonly child: ChildProcess;
  output = "";
  #nextId = 0;
  readonly #pending = new Map<number, { resolve: (value: unknown) => void; reject: (error: Error) => void }>();
  readonly #watchers = new Set<() => void>();
  readonly #exited: Promise<void>;

  private constructor(
    child: ChildProcess,
    readonly name: string,
  ) {
    this.child = child;
    child.stdout?.on("data", (chunk: Buffer) => {
      this.output += chunk.toString();
    });
    child.stderr?.on("data", (chunk: Buffer) => {
      this.output += chunk.toString();
    });
    child.on("message", (message: FixtureMessage) => {
      if (message.type === "reply") {
        const pending = this.#pending.get(Number(message.id));
        this.#pending.delete(Number(message.id));
        if (message.ok === true) pending?.resolve(message.result);
        else {
          const error = message.error as { code?: string; message?: string };
          pending?.reject(Object.assign(new Error(error.message), { code: error.code }));
        }
        return;
      }
      this.messages.push(message);
      for (const watcher of [...this.#watchers]) watcher();
    });
    this.#exited = new Promise((resolve) => child.once("exit", () => resolve()));
    this.#exited.then(() => {
      for (const { reject } of this.#pending.values()) reject(new Error(`${name} exited:\n${this.output}`));
      this.#pending.clear();
    });
  }

  /**
   * Starts `fixtures/<file>` with `env` and waits for its `ready` message, checking that it
   * runs on the ioredis major of this jest project.
   */
  static async start(file: string, name: string, env: Record<string, string>): Promise<Fixture> {
    const major = expectedIoredisMajor();
    const child = fork(path.join(FIXTURES, file), [], {
      execArgv: [
        "-r",
        "ts-node/register/transpile-only",
        ...(major === 5 ? ["-r", path.join(FIXTURES, "use-ioredis5.ts")] : []),
      ],
      env: {
        ...process.env,
        TS_NODE_COMPILER_OPTIONS: JSON.stringify({ module: "commonjs", moduleResolution: "node" }),
        ...env,
      },
      stdio: ["ignore", "pipe", "pipe", "ipc"],
    });
    const fixture = new Fixture(child, name);
    await within(
      fixture.waitFor((m) => m.type === "ready"),
      `${name} to start\n${fixture.output}`,
      30_000,
    );
    const ready = fixture.messages.find((m) => m.type === "ready");
    if (ready?.ioredisMajor !== major) {
      await fixture.stop();
      throw new Error(`${name} runs on ioredis ${String(ready?.ioredisMajor)}, expected ${major}`);
    }
    return fixture;
  }

  /** The `ready` message's port (servers). */
  get url(): string {
    const ready = this.messages.find((m) => m.type === "ready");
    return `http://127.0.0.1:${String(ready?.port)}`;
  }

  /** Resolves with the first message, past or future, that `match` accepts. */
  waitFor(match: (message: FixtureMessage) => boolean): Promise<FixtureMessage> {
    const found = this.messages.find(match);
    if (found !== undefined) return Promise.resolve(found);
    return new Promise((resolve) => {
      const watcher = (): void => {
        const hit = this.messages.find(match);
        if (hit === undefined) return;
        this.#watchers.delete(watcher);
        resolve(hit);
      };
      this.#watchers.add(watcher);
    });
  }

  /** Calls `op` in the fixture; resolves with its result or rejects with its error (and `code`). */
  request<T>(op: string, ...args: unknown[]): Promise<T> {
    const id = this.#nextId++;
    return new Promise<T>((resolve, reject) => {
      this.#pending.set(id, { resolve: (value) => resolve(value as T), reject });
      this.child.send({ type: "request", id, op, args });
    });
  }

  /** Asks the fixture to shut down cleanly; kills it if it has not exited within the timeout. */
  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    if (this.child.connected) this.child.send({ type: "stop" });
    try {
      await within(this.#exited, `${this.name} to stop`, 10_000);
    } catch {
      this.child.kill("SIGKILL");
      await this.#exited;
    }
  }
}

/** Starts `count` SSE servers (fixtures/server.ts) sharing one Redis and prefix. */
export function startServers(count: number, env: Record<string, string>): Promise<Fixture[]> {
  return Promise.all(Array.from({ length: count }, (_, i) => Fixture.start("server.ts", `server ${i + 1}`, env)));
}

/** SSE servers and a writer sharing one Redis under one prefix, and an admin connection to that Redis. */
export interface Deployment {
  servers: Fixture[];
  writer: Fixture;
  admin: Redis;
  prefix: string;
}

/** Starts `count` SSE servers and a writer (fixtures/writer.ts) on the Redis at `url`, under `prefix`. */
export async function deploy(prefix: string, count: number, url = REDIS_URL): Promise<Deployment> {
  const env = { REDIS_URL: url, RUNCAST_PREFIX: prefix };
  const [servers, writer] = await Promise.all([startServers(count, env), Fixture.start("writer.ts", "writer", env)]);
  return { servers, writer, admin: adminClient(url), prefix };
}

/** Stops a deployment's processes and deletes its keys; closing its admin connection is left to the caller. */
export async function stopDeployment(deployment: Deployment | undefined): Promise<void> {
  if (deployment === undefined) return;
  await Promise.all([...deployment.servers, deployment.writer].map((fixture) => fixture.stop()));
  await deleteKeys(deployment.admin, deployment.prefix);
}

// ---- a throwaway Redis ----------------------------------------------------------------------

/** A free TCP port on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/**
 * A `redis-server` child of the tests, for faults the shared server must not suffer. It
 * keeps an append-only file fsynced on every write in `dir`, so a restart keeps the data
 * (without persistence a restarted Redis comes back empty and every run is gone).
 */
export class RedisServerProcess {
  #child: ChildProcess | undefined;
  output = "";

  constructor(
    readonly port: number,
    readonly dir: string,
  ) {}

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  /** Starts the server and resolves once it accepts connections (data loaded). */
  async start(): Promise<void> {
    const child = spawn(
      "redis-server",
      [
        "--port",
        String(this.port),
        "--bind",
        "127.0.0.1",
        "--daemonize",
        "no",
        "--save",
        "",
        "--appendonly",
        "yes",
        "--appendfsync",
        "always",
        "--dir",
        this.dir,
      ],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    this.#child = child;
    const ready = new Promise<void>((resolve, reject) => {
      const onData = (chunk: Buffer): void => {
        this.output += chunk.toString();
        if (this.output.includes("Ready to accept connections")) resolve();
      };
      child.stdout?.on("data", onData);
      child.stderr?.on("data", onData);
      child.once("exit", (code) => reject(new Error(`redis-server exited (${code}):\n${this.output}`)));
    });
    await within(ready, `redis-server on port ${this.port} to start\n${this.output}`, 15_000);
  }

  /** Stops the server's process (SIGSTOP): its connections stay open and nothing answers. */
  pause(): void {
    this.#child?.kill("SIGSTOP");
  }

  /** Lets a paused server go on (SIGCONT). */
  resume(): void {
    this.#child?.kill("SIGCONT");
  }

  /** Kills the server and starts it again with no data, as a Redis without persistence comes back. */
  async restartEmpty(): Promise<void> {
    await this.kill();
    for (const file of await readdir(this.dir)) await rm(path.join(this.dir, file), { recursive: true, force: true });
    await this.start();
  }

  /** Kills the server at once (a crash: no shutdown work), and resolves when it is gone. */
  async kill(): Promise<void> {
    const child = this.#child;
    if (child === undefined || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
    child.kill("SIGKILL");
    await exited;
    this.output = "";
  }
}

// ---- a proxy that loses one reply ---------------------------------------------------------------

/**
 * A TCP proxy in front of Redis for faults a client cannot be put through otherwise: it can
 * lose a reply (armed, it swallows the next bytes Redis sends and cuts both sides, so the
 * command has run but the client never hears of it, which is what a dropped connection does
 * to a command in flight), and it can cut every connection and refuse new ones for a while.
 */
export class FaultyProxy {
  readonly #server: net.Server;
  readonly #sockets = new Set<net.Socket>();
  #armed = false;
  #refusing = false;
  /** Client connections accepted so far. */
  connections = 0;
  /** Replies swallowed so far. */
  lostReplies = 0;
  /** Everything clients sent to Redis through the proxy. */
  sent = "";

  private constructor(server: net.Server) {
    this.#server = server;
  }

  static async start(target: string): Promise<FaultyProxy> {
    const { hostname, port } = new URL(target);
    const server = net.createServer();
    const proxy = new FaultyProxy(server);
    server.on("connection", (client) => proxy.#pipe(client, hostname || "127.0.0.1", Number(port || 6379)));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
    return proxy;
  }

  /** The proxy's address, keeping `target`'s credentials and database. */
  urlFor(target: string): string {
    const url = new URL(target);
    url.hostname = "127.0.0.1";
    url.port = String((this.#server.address() as net.AddressInfo).port);
    return url.toString();
  }

  /** Loses the next reply that comes back from Redis. */
  loseNextReply(): void {
    this.#armed = true;
  }

  /** Cuts every connection and refuses new ones until {@link restore}. */
  cut(): void {
    this.#refusing = true;
    for (const socket of this.#sockets) socket.destroy();
  }

  /** Accepts connections again. */
  restore(): void {
    this.#refusing = false;
  }

  async close(): Promise<void> {
    for (const socket of this.#sockets) socket.destroy();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #pipe(client: net.Socket, host: string, port: number): void {
    if (this.#refusing) {
      client.destroy();
      return;
    }
    this.connections++;
    const upstream = net.connect(port, host);
    for (const socket of [client, upstream]) {
      this.#sockets.add(socket);
      socket.on("close", () => this.#sockets.delete(socket));
      socket.on("error", () => {
        client.destroy();
        upstream.destroy();
      });
    }
    client.on("data", (chunk: Buffer) => {
      this.sent += chunk.toString("latin1");
      upstream.write(chunk);
    });
    upstream.on("data", (chunk) => {
      if (this.#armed) {
        this.#armed = false;
        this.lostReplies++;
        client.destroy();
        upstream.destroy();
        return;
      }
      client.write(chunk);
    });
    client.on("close", () => upstream.destroy());
    upstream.on("close", () => client.destroy());
  }
}

// ---- what clients must have received ------------------------------------------------------------

/** A frame or a log entry, in the shape both can be compared in. */
export interface Delivered {
  event: string;
  id: string | undefined;
  data: unknown;
}

/** Frames as {@link Delivered}. */
export function delivered(frames: readonly SseFrame[]): Delivered[] {
  return frames.map((frame) => ({ event: frame.event, id: frame.id, data: frame.json }));
}

/** The log entries (of `runIds`, when given) after `afterId`, as the frames that must carry them. */
export function expectedAfter(log: readonly LogEntry[], afterId: string, runIds?: readonly string[]): Delivered[] {
  return log
    .filter(
      (entry) => compareEnvelopeIds(entry.id, afterId) > 0 && (runIds === undefined || runIds.includes(entry.runId)),
    )
    .map((entry) => ({ event: entry.type, id: entry.id, data: entry.data }));
}

/**
 * Checks a per-run stream against what was recorded: a snapshot `state` whose id is its
 * cursor (unless the client resumed after `resumedAfter`), then every envelope of the run
 * recorded after that, once, in order; the last one is the `complete`.
 */
export function expectFullRun(
  frames: readonly SseFrame[],
  log: readonly LogEntry[],
  runId: string,
  resumedAfter?: string,
): void {
  let after = resumedAfter;
  let rest = delivered(frames);
  if (after === undefined) {
    const [snapshot, ...live] = rest;
    expect(snapshot?.event).toBe("state");
    expect(snapshot?.id).toEqual(expect.any(String));
    after = snapshot?.id as string;
    rest = live;
  }
  expect(rest).toEqual(expectedAfter(log, after, [runId]));
  expect(rest[rest.length - 1]?.event).toBe("complete");
}

/** Checks the log itself: run `runId` recorded events `seq` 0 .. count-1, each once, in order. */
export function expectRecordedOnce(log: readonly LogEntry[], runId: string, count: number): void {
  const seqs = log.filter((entry) => entry.runId === runId && entry.type === "event").map((entry) => entry.data.seq);
  expect(seqs).toEqual(Array.from({ length: count }, (_, i) => i));
}

/**
 * A conformance subject on a fresh prefix, reached through a {@link FaultyProxy} that can lose
 * a write's reply after Redis ran it (a dropped connection); closing it removes its keys.
 */
export async function behindFaultyProxy<S extends { close(): Promise<void> }>(
  label: string,
  make: (proxiedUrl: string, prefix: string) => S,
): Promise<{ source: S; writer: S; dropConnectionMidWrite: () => void; close: () => Promise<void> }> {
  const prefix = newPrefix(label);
  const proxy = await FaultyProxy.start(REDIS_URL);
  const source = make(proxy.urlFor(REDIS_URL), prefix);
  return {
    source,
    writer: source,
    dropConnectionMidWrite: () => proxy.loseNextReply(),
    close: async () => {
      await source.close();
      await proxy.close();
      const admin = adminClient();
      await deleteKeys(admin, prefix);
      admin.disconnect();
    },
  };
}
