/** Reaching the Redis of the benchmark's Redis rows, and clearing what a trial left in it. */
import { Redis } from "ioredis";

/** The Redis of the `runcast-redis` server. */
export const REDIS_URL = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";

/** A connection to Redis for cleaning up, or why there is none; never retries for long. */
export async function connectRedis(url: string = REDIS_URL): Promise<Redis | string> {
  const redis = new Redis(url, {
    lazyConnect: true,
    connectTimeout: 2000,
    maxRetriesPerRequest: 1,
    retryStrategy: () => null,
  });
  // The socket's own error (ECONNREFUSED, say) says more than the failed command's.
  let cause: string | undefined;
  redis.on("error", (error: Error) => {
    cause ??= error.message;
  });
  try {
    await redis.connect();
    await redis.ping();
    return redis;
  } catch (error) {
    redis.disconnect();
    return `no Redis answers at ${url} (${cause ?? (error instanceof Error ? error.message : String(error))})`;
  }
}

/** Deletes every key under `prefix` (SCAN + DEL). */
export async function deleteKeys(redis: Redis, prefix: string): Promise<number> {
  let cursor = "0";
  let deleted = 0;
  do {
    const [next, keys] = await redis.scan(cursor, "MATCH", `${prefix}:*`, "COUNT", 5000);
    cursor = next;
    if (keys.length > 0) deleted += await redis.del(...keys);
  } while (cursor !== "0");
  return deleted;
}
