/**
 * A throwaway Redis for the storm phase: a reconnect storm is meant to load Redis, and its
 * per-command timings need a Redis nobody else uses meanwhile. `redis-server` on a free
 * port of 127.0.0.1, nothing persisted, stopped when the phase ends.
 */
import { spawn } from "node:child_process";
import { createServer } from "node:net";
import { Redis } from "ioredis";

/** A Redis started for the benchmark. */
export interface PrivateRedis {
  url: string;
  /** A connection for the benchmark's own commands. */
  admin: Redis;
  stop(): Promise<void>;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once("error", reject);
    probe.listen(0, "127.0.0.1", () => {
      const address = probe.address();
      const port = typeof address === "object" && address !== null ? address.port : 0;
      probe.close(() => resolve(port));
    });
  });
}

/** Starts `redis-server` (from `PATH`, or `binary`) and resolves once it answers PING; rejects with why not. */
export async function startPrivateRedis(binary = "redis-server"): Promise<PrivateRedis> {
  const port = await freePort();
  const proc = spawn(
    binary,
    ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--maxclients", "20000"],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  let output = "";
  // It says when it accepts connections; connecting before that is refused.
  const ready = new Promise<void>((resolve) => {
    const read = (chunk: Buffer): void => {
      output += chunk.toString();
      if (output.includes("Ready to accept connections")) {
        proc.stdout?.off("data", read);
        proc.stdout?.resume();
        resolve();
      }
    };
    proc.stdout?.on("data", read);
  });
  proc.stderr?.on("data", (chunk: Buffer) => {
    output += chunk.toString();
  });
  const exited = new Promise<void>((resolve) => proc.once("exit", () => resolve()));
  const spawnError = new Promise<never>((_, reject) => {
    proc.once("error", reject);
    proc.once("exit", (code) => reject(new Error(`exited with ${code}`)));
  });
  const timeout = new Promise<never>((_, reject) =>
    setTimeout(() => reject(new Error("not ready within 10 s")), 10_000).unref(),
  );
  const url = `redis://127.0.0.1:${port}`;
  const admin = new Redis(url, {
    lazyConnect: true,
    maxRetriesPerRequest: 1,
    retryStrategy: (n) => (n > 50 ? null : 100),
  });
  admin.on("error", () => {});
  const stop = async (): Promise<void> => {
    admin.disconnect();
    // Never started (no such binary): nothing to stop.
    if (proc.pid === undefined) return;
    if (proc.exitCode === null) proc.kill("SIGTERM");
    await exited;
  };
  try {
    await Promise.race([ready, spawnError, timeout]);
    await admin.connect();
    await admin.ping();
  } catch (error) {
    await stop();
    throw new Error(
      `could not start ${binary}: ${error instanceof Error ? error.message : String(error)} ${output.slice(-500)}`,
    );
  }
  return { url, admin, stop };
}
