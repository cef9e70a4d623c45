import { randomUUID } from "node:crypto";
import { type Job, Queue, Worker } from "bullmq";
import { BullMQRunSource, type BullMQRunSourceOptions } from "../../lib/bullmq/index";
import type { ConformanceWriter } from "../../lib/testing/index";
import { adminClient, eventually, REDIS_URL } from "../redis/support";

export {
  adminClient,
  Collector,
  connectionsNamed,
  describeRedis,
  eventually,
  REDIS_URL,
  within,
} from "../redis/support";

/** A queue name no other test uses. */
export function newQueueName(label: string): string {
  return `runcast-test-${label}-${randomUUID().slice(0, 8)}`;
}

/** ioredis options for BullMQ's connections to the test Redis. */
export function connectionOptions(): { host: string; port: number; maxRetriesPerRequest: null } {
  const url = new URL(REDIS_URL);
  return { host: url.hostname || "127.0.0.1", port: Number(url.port || 6379), maxRetriesPerRequest: null };
}

/** Deletes every key of queue `name` (BullMQ's and the copied log counters in job hashes alike). */
export async function deleteQueueKeys(name: string): Promise<void> {
  const admin = adminClient();
  try {
    let cursor = "0";
    do {
      const [next, keys] = await admin.scan(cursor, "MATCH", `bull:${name}:*`, "COUNT", 1000);
      cursor = next;
      if (keys.length > 0) await admin.del(...keys);
    } while (cursor !== "0");
  } finally {
    admin.disconnect();
  }
}

/** How a test finishes a job it holds. */
interface Held {
  job: Job;
  resolve: (value: unknown) => void;
  reject: (error: Error) => void;
}

/**
 * A queue, a worker whose jobs wait for the test to finish them, and a BullMQRunSource on the
 * queue: the test drives jobs step by step (log, progress, finish) like a real worker would.
 */
export class HeldJobs {
  readonly queue: Queue;
  readonly worker: Worker;
  readonly source: BullMQRunSource;
  readonly held = new Map<string, Held>();
  /** Jobs the test finished, which a test may still log to or report progress on. */
  readonly finishedJobs = new Map<string, Job>();
  readonly errors: { error: Error; phase: string; jobId?: string }[] = [];
  readonly #waiters = new Set<() => void>();

  constructor(
    readonly name: string,
    sourceOptions: Partial<BullMQRunSourceOptions> = {},
  ) {
    const connection = connectionOptions();
    this.queue = new Queue(name, { connection });
    this.worker = new Worker(
      name,
      (job) =>
        new Promise((resolve, reject) => {
          this.held.set(job.id as string, { job, resolve, reject });
          for (const waiter of [...this.#waiters]) waiter();
        }),
      // Short stall checks, so a test's later worker finds a crashed worker's job quickly.
      { connection, concurrency: 50, lockDuration: 1_000, stalledInterval: 500 },
    );
    this.source = new BullMQRunSource({
      queue: name,
      connection,
      logPollMs: 50,
      blockMs: 1_000,
      onError: (error, context) => this.errors.push({ error, ...context }),
      ...sourceOptions,
    });
  }

  /** Resolves once the source, queue and worker are connected. */
  async ready(): Promise<void> {
    await Promise.all([this.source.ready(), this.queue.waitUntilReady(), this.worker.waitUntilReady()]);
  }

  /** Resolves once the worker holds job `id`. */
  async started(id: string): Promise<Held> {
    await eventually(async () => this.held.has(id), `job ${id} to start`, 10_000);
    return this.held.get(id) as Held;
  }

  /** Resolves once job `id` is completed or failed in Redis. */
  async finished(id: string): Promise<void> {
    await eventually(
      async () => ["completed", "failed"].includes(await this.queue.getJobState(id)),
      `job ${id} to finish`,
      10_000,
    );
  }

  /** The writer the conformance kit drives: jobs, log lines, progress, completion. */
  writer(): ConformanceWriter {
    return {
      createRun: async ({ id }) => {
        await this.queue.add("conformance", {}, { jobId: id });
        await this.started(id);
      },
      recordEvent: async (runId, event) => {
        await (this.held.get(runId)?.job ?? this.finishedJobs.get(runId))?.log(`step ${event.seq}`);
      },
      // On a finished job too (BullMQ takes it), so a source must ignore what follows the end.
      updateRun: async (runId, patch) => {
        await (this.held.get(runId)?.job ?? this.finishedJobs.get(runId))?.updateProgress(patch);
      },
      completeRun: async (runId, final) => {
        const held = this.held.get(runId);
        if (held === undefined) throw new Error(`job ${runId} is not held`);
        this.held.delete(runId);
        this.finishedJobs.set(runId, held.job);
        if (final.status === "completed") held.resolve({ completed_units: final.completed_units });
        else held.reject(new Error("the conformance suite failed this job"));
        await this.finished(runId);
      },
    };
  }

  async close(): Promise<void> {
    for (const held of this.held.values()) held.reject(new Error("test over"));
    await this.source.close();
    // Not forced: the worker finishes moving the jobs just rejected before the keys go.
    await this.worker.close();
    await this.queue.close();
    await deleteQueueKeys(this.name);
  }
}
