/**
 * The producer: adds "deploy" jobs to the queue, each a BullMQ flow whose children (one per
 * service) run first; the parent then finishes the release. runcast shows the parent as a run
 * whose units are the children.
 */
import { FlowProducer, type RedisOptions } from "bullmq";

/** The services a deploy touches, one child job each. */
export const SERVICES = ["auth", "billing", "search"] as const;

export class Producer {
  readonly #flows: FlowProducer;
  #count = 0;

  constructor(
    readonly queue: string,
    connection: RedisOptions,
  ) {
    this.#flows = new FlowProducer({ connection });
  }

  /** Adds one deploy (a parent job and its children); resolves with the parent's job id, the run id. */
  async startDeploy(): Promise<string> {
    this.#count += 1;
    const id = `deploy-${Date.now().toString(36)}-${this.#count}`;
    const keep = { removeOnComplete: { count: 200 }, removeOnFail: { count: 200 } };
    await this.#flows.add({
      name: "deploy",
      queueName: this.queue,
      data: { services: SERVICES.length },
      opts: { jobId: id, ...keep },
      children: SERVICES.map((service) => ({
        name: "service",
        queueName: this.queue,
        data: { service, steps: 4 },
        opts: { jobId: `${id}.${service}`, attempts: 2, ...keep },
      })),
    });
    return id;
  }

  close(): Promise<void> {
    return this.#flows.close();
  }
}
