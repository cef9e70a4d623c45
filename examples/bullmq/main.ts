/**
 * `npm run example:bullmq`: a BullMQ producer, a worker and the runcast dashboard over the
 * local Redis (`REDIS_URL`, default redis://127.0.0.1:6379), on http://127.0.0.1:3000/
 * (`PORT`, `HOST`). A new deploy starts every few seconds; "Start a run" on the page adds one.
 * The queue is `runcast-example` (`QUEUE`); Ctrl-C stops everything, keeping the queue's jobs.
 */
import { BullMQRunSource } from "../../lib/bullmq/index";
import { secretNotice, type TokenSecret, tokenSecretFromEnv } from "../stream-token";
import { createDashboard } from "./dashboard";
import { Producer } from "./producer";
import { startWorker } from "./worker";

const url = new URL(process.env.REDIS_URL ?? "redis://127.0.0.1:6379");
const connection = { host: url.hostname || "127.0.0.1", port: Number(url.port || 6379), maxRetriesPerRequest: null };
const queue = process.env.QUEUE ?? "runcast-example";
const port = Number(process.env.PORT ?? 3000);
const host = process.env.HOST ?? "127.0.0.1";

let tokens: TokenSecret;
try {
  tokens = tokenSecretFromEnv();
} catch (error) {
  console.error(`runcast BullMQ example: ${(error as Error).message}`);
  process.exit(1);
}

const producer = new Producer(queue, connection);
const worker = startWorker(queue, connection);
const source = new BullMQRunSource({ queue, connection });
const dashboard = createDashboard(source, producer, { tokenSecret: tokens.secret });

const server = dashboard.app.listen(port, host, () => {
  console.log(`runcast BullMQ example: http://${host}:${port}/ (queue "${queue}")`);
  console.log(secretNotice(tokens));
  console.log("Ctrl-C to stop.");
  void producer.startDeploy();
});
server.on("error", (error) => {
  console.error(`runcast BullMQ example: cannot listen on ${host}:${port}: ${error.message}`);
  process.exit(1);
});
const timer = setInterval(() => void producer.startDeploy(), 8_000);

let stopping = false;
async function shutdown(): Promise<void> {
  if (stopping) process.exit(1);
  stopping = true;
  clearInterval(timer);
  await dashboard.close();
  await Promise.all([worker.close(), producer.close(), source.close()]);
  server.close(() => process.exit(0));
  server.closeIdleConnections();
}
process.once("SIGINT", () => void shutdown());
process.once("SIGTERM", () => void shutdown());
