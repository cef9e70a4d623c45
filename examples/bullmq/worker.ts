/**
 * The worker: multi-step jobs that log each step (`job.log`) and report progress
 * (`job.updateProgress`). runcast reads both from Redis; the worker knows nothing of runcast.
 */
import { type Job, type RedisOptions, Worker } from "bullmq";

const STEP_MS = 700;

function pause(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function deployService(job: Job<{ service: string; steps: number }>): Promise<string> {
  const { service, steps } = job.data;
  for (let step = 1; step <= steps; step++) {
    await pause(STEP_MS * (0.5 + Math.random()));
    await job.log(`${service}: step ${step} of ${steps}`);
    await job.updateProgress({ completed_units: step, total_units: steps });
  }
  // Now and then a service fails its first attempt; BullMQ retries it (attempts: 2).
  if (job.attemptsMade === 0 && Math.random() < 0.2) throw new Error(`${service}: health check failed`);
  return `${service} is live`;
}

async function finishDeploy(job: Job): Promise<{ services: string[] }> {
  const results = await job.getChildrenValues<string>();
  await job.log(`all ${Object.keys(results).length} services deployed; switching traffic`);
  await pause(STEP_MS);
  return { services: Object.values(results) };
}

/** Starts the worker on `queue`. */
export function startWorker(queue: string, connection: RedisOptions): Worker {
  return new Worker(queue, (job) => (job.name === "deploy" ? finishDeploy(job) : deployService(job)), {
    connection,
    concurrency: 6,
  });
}
