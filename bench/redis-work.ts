/**
 * What Redis spent its time on during a window, per command or script, from its own
 * bookkeeping: SLOWLOG with a threshold of 0 µs logs every command with its execution time
 * and the name of the connection that sent it (so one process's work is told apart from
 * another's), and INFO commandstats, whose counters also include the commands a script ran.
 * Only for a Redis the benchmark has to itself: it changes the SLOWLOG settings (restoring
 * them after) and clears the log.
 */
import { createHash } from "node:crypto";
import type { Redis } from "ioredis";

/** Time Redis spent on one kind of command (a command name, or a script by name). */
export interface RedisWorkItem {
  /** The connection that sent it (its name less the key prefix, e.g. `commands`, `writer`). */
  connection: string;
  /** `EVALSHA <script name or SHA>` or the command name, with its key's shape (`P` the prefix, `<run>` a run id). */
  command: string;
  calls: number;
  /** Execution time inside Redis, summed, in µs. */
  usec: number;
  /**
   * The median call's execution time, in µs: SLOWLOG times are wall-clock, and a call during
   * which the machine took the CPU from Redis lasts much longer; the median shrugs that off.
   */
  p50Usec: number;
}

/** Everything Redis did during a window. */
export interface RedisWork {
  items: RedisWorkItem[];
  /** INFO commandstats differences (calls and µs per command, script-run commands included). */
  commandstats: { command: string; calls: number; usec: number }[];
  /** Whether the log filled up, so some commands are missing from `items`. */
  truncated: boolean;
  /**
   * CPU time the Redis server used in the window (INFO cpu, user + system, all its work), in
   * ms. Unlike SLOWLOG's durations, which are wall-clock time and grow when other processes
   * take the CPU from Redis, it counts only the time Redis ran.
   */
  cpuMs: number;
  /** How long the window lasted, in ms. */
  windowMs: number;
}

/** INFO cpu's user + system CPU time of the Redis server so far (all its work), in ms. */
export async function redisCpuMs(redis: Redis): Promise<number> {
  const info = await redis.info("cpu");
  const field = (name: string): number => Number(new RegExp(`^${name}:([\\d.]+)`, "m").exec(info)?.[1] ?? Number.NaN);
  return (field("used_cpu_user") + field("used_cpu_sys")) * 1000;
}

/** Entries kept at most: a 5,000-client storm logs a few per client. */
const SLOWLOG_MAX_LEN = 500_000;

/** INFO commandstats as `command -> { calls, usec }`. */
async function commandstats(redis: Redis): Promise<Map<string, { calls: number; usec: number }>> {
  const info = await redis.info("commandstats");
  const out = new Map<string, { calls: number; usec: number }>();
  for (const line of info.split("\n")) {
    const match = /^cmdstat_([^:]+):calls=(\d+),usec=(\d+)/.exec(line.trim());
    if (match !== null) out.set(match[1] as string, { calls: Number(match[2]), usec: Number(match[3]) });
  }
  return out;
}

/** How much of each argument SLOWLOG keeps. */
const SLOWLOG_ARG_CHARS = 100;
/** The scripts' names by the start of their source, for EVAL (ioredis's first call of a script on a connection). */
const sources = new Map<string, string>();

/**
 * Names of runcast's Lua scripts by SHA1, read from `lib/redis/scripts` by letting its
 * installer define them on a stand-in; empty when that module is not there (the labels then
 * show the SHA).
 */
export function scriptNames(): Map<string, string> {
  const names = new Map<string, string>();
  sources.clear();
  try {
    const scripts = require("../lib/redis/scripts") as {
      installScripts?: (redis: Redis) => unknown;
    };
    const standIn: Record<string, unknown> = {
      defineCommand(name: string, definition: { lua: string }) {
        const short = name.replace(/^runcast_/, "");
        names.set(createHash("sha1").update(definition.lua).digest("hex"), short);
        // Scripts that begin alike (a shared prelude) cannot be told apart by SLOWLOG's truncated copy.
        const start = definition.lua.slice(0, SLOWLOG_ARG_CHARS);
        const known = sources.get(start);
        sources.set(start, known === undefined ? short : `${known}|${short}`);
        standIn[name] = () => undefined;
      },
    };
    scripts.installScripts?.(standIn as unknown as Redis);
  } catch {
    // No such module in this version: SHAs it is.
  }
  return names;
}

/** A command's label: its name and the shape of its first key, so one command on many runs is one line. */
function label(args: readonly string[], prefix: string, scripts: ReadonlyMap<string, string>): string {
  const name = (args[0] ?? "?").toUpperCase();
  const shape = (key: string | undefined): string =>
    key === undefined || !key.startsWith(`${prefix}:`)
      ? ""
      : ` P${key
          .slice(prefix.length)
          .replace(/run_[A-Za-z0-9._-]+/g, "<run>")
          .replace(/\d+-\d+/g, "<id>")}`;
  if (name === "EVALSHA" || name === "EVAL") {
    const sha = args[1] ?? "";
    const script =
      name === "EVALSHA"
        ? (scripts.get(sha) ?? sha.slice(0, 8))
        : (sources.get(sha.slice(0, SLOWLOG_ARG_CHARS)) ?? "(source)");
    return `${name} ${script}${shape(args[3])}`;
  }
  if (name === "XREAD" || name === "XREADGROUP") return name;
  return `${name}${shape(args[1])}`;
}

/**
 * Starts recording every command Redis runs; the function returned stops, restores the
 * settings, and answers the work of the connections whose name starts with `prefix:`.
 */
export async function recordRedisWork(redis: Redis, prefix: string): Promise<() => Promise<RedisWork>> {
  const [, threshold] = (await redis.config("GET", "slowlog-log-slower-than")) as [string, string];
  const [, maxLen] = (await redis.config("GET", "slowlog-max-len")) as [string, string];
  await redis.config("SET", "slowlog-max-len", String(SLOWLOG_MAX_LEN));
  await redis.config("SET", "slowlog-log-slower-than", "0");
  await redis.slowlog("RESET");
  const before = await commandstats(redis);
  const scripts = scriptNames();
  const cpuBefore = await redisCpuMs(redis);
  const startedAt = Date.now();
  return async () => {
    const cpuMs = (await redisCpuMs(redis)) - cpuBefore;
    const windowMs = Date.now() - startedAt;
    const after = await commandstats(redis);
    await redis.config("SET", "slowlog-log-slower-than", threshold);
    const entries = (await redis.call("SLOWLOG", "GET", "-1")) as [number, number, number, string[], string, string][];
    await redis.slowlog("RESET");
    await redis.config("SET", "slowlog-max-len", maxLen);
    const items = new Map<string, RedisWorkItem & { durations: number[] }>();
    for (const [, , usec, args, , client] of entries) {
      if (!client.startsWith(`${prefix}:`)) continue;
      const connection = client.slice(prefix.length + 1);
      const command = label(args, prefix, scripts);
      const key = `${connection}\n${command}`;
      const item = items.get(key) ?? { connection, command, calls: 0, usec: 0, p50Usec: 0, durations: [] };
      item.calls++;
      item.usec += usec;
      item.durations.push(usec);
      items.set(key, item);
    }
    const stats: RedisWork["commandstats"] = [];
    for (const [command, now] of after) {
      const was = before.get(command) ?? { calls: 0, usec: 0 };
      if (now.calls > was.calls) stats.push({ command, calls: now.calls - was.calls, usec: now.usec - was.usec });
    }
    const summed = [...items.values()].map(({ durations, ...item }) => {
      durations.sort((a, b) => a - b);
      return { ...item, p50Usec: durations[Math.floor((durations.length - 1) / 2)] ?? 0 };
    });
    return {
      items: summed.sort((a, b) => b.usec - a.usec),
      commandstats: stats.sort((a, b) => b.usec - a.usec),
      truncated: entries.length >= SLOWLOG_MAX_LEN,
      cpuMs,
      windowMs,
    };
  };
}
