import { Redis } from "ioredis";
import type { Envelope, RunEventSource, RunState } from "../../lib/index";

/**
 * A Redis source written the obvious way: each write a plain `XADD` (and `HSET`), nothing to
 * recognise a command ioredis sends again after losing its reply. Everything else is right.
 */
export class NaiveRedisSource implements RunEventSource {
  readonly #commands: Redis;
  readonly #readerUrl: string;
  readonly #listeners = new Set<(envelope: Envelope) => void>();
  #reader: Redis | undefined;
  #reading = false;

  constructor(
    writeUrl: string,
    readUrl: string,
    readonly prefix: string,
  ) {
    this.#commands = new Redis(writeUrl, { protocol: 2 });
    this.#readerUrl = readUrl;
  }

  async #write(type: Envelope["type"], runId: string, data: object): Promise<void> {
    await this.#commands.xadd(`${this.prefix}:log`, "*", "t", type, "r", runId, "d", JSON.stringify(data));
    if (type !== "event") await this.#commands.hset(`${this.prefix}:run:${runId}`, "state", JSON.stringify(data));
  }

  async createRun({ id }: { id: string }): Promise<void> {
    await this.#write("state", id, { id, status: "pending", completed_units: 0 });
  }
  async recordEvent(runId: string, event: { type: string; seq: number }): Promise<void> {
    await this.#write("event", runId, { ...event, run_id: runId, ts: new Date().toISOString() });
  }
  async updateRun(runId: string, patch: { completed_units: number }): Promise<void> {
    await this.#write("state", runId, { ...(await this.getRun(runId)), ...patch });
  }
  async completeRun(runId: string, final: { status: string; completed_units: number }): Promise<void> {
    await this.#write("complete", runId, { ...(await this.getRun(runId)), ...final });
  }

  async getRun(runId: string): Promise<RunState | undefined> {
    const json = await this.#commands.hget(`${this.prefix}:run:${runId}`, "state");
    return json === null ? undefined : (JSON.parse(json) as RunState);
  }
  listRuns(): RunState[] {
    return [];
  }

  subscribe(listener: (envelope: Envelope) => void): () => void {
    this.#listeners.add(listener);
    if (!this.#reading) void this.#read();
    return () => this.#listeners.delete(listener);
  }

  async #read(): Promise<void> {
    this.#reading = true;
    const reader = new Redis(this.#readerUrl, { protocol: 2 });
    this.#reader = reader;
    const last = await this.#commands.xrevrange(`${this.prefix}:log`, "+", "-", "COUNT", 1);
    let position = last[0]?.[0] ?? "0-0";
    while (this.#reading) {
      const reply = await reader.xread("BLOCK", 200, "STREAMS", `${this.prefix}:log`, position).catch(() => null);
      for (const [id, fields] of reply?.[0]?.[1] ?? []) {
        position = id;
        const envelope = { type: fields[1], runId: fields[3], id, data: JSON.parse(fields[5] as string) } as Envelope;
        for (const listener of this.#listeners) listener(envelope);
      }
    }
  }

  async close(): Promise<void> {
    this.#reading = false;
    this.#reader?.disconnect();
    this.#commands.disconnect();
  }
}
