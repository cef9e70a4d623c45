import { MemoryRunSource, sseRouter } from "../../lib/index";
import type { BenchEvent } from "../protocol";
import { expressServer } from "./shared";
import type { Fanout } from "./types";

/** Runs of the scoped phase, one per tag: run `run_tag_<j>` carries tag `tag_<j>`. */
export const TAGGED_RUNS = 100;

/** The id of the run an event of sequence number `seq` goes to: round robin over the runs. */
export function taggedRunOf(seq: number): string {
  return `run_tag_${seq % TAGGED_RUNS}`;
}

/**
 * runcast's global stream over runs with tags: `sseRouter` over a `MemoryRunSource` with
 * stream tokens on (`tokens: { secret }`), 100 runs each carrying its own tag, every event
 * recorded into the next run in turn. Whether a client sees every run or one tag's is only
 * its token's scope, and how many events each run gets per tick only how many the
 * orchestrator asks for: the scoped phase's three kinds run this same server.
 */
export function createFanout(secret: string): Fanout {
  const source = new MemoryRunSource();
  for (let j = 0; j < TAGGED_RUNS; j++) {
    source.createRun({ id: `run_tag_${j}`, status: "running", total_units: 1000, tags: [`tag_${j}`] });
  }
  // `BENCH_COALESCE_MS`: the router's `coalesceMs` for both the scoped and unscoped trials.
  const coalesceMs = Number(process.env.BENCH_COALESCE_MS ?? 0);
  const router = sseRouter(source, { tokens: { secret }, coalesceMs });
  return {
    ...expressServer(router),
    publish(event: BenchEvent): void {
      const runId = taggedRunOf(event.seq);
      source.recordEvent(runId, { ...event, run_id: runId });
    },
    // A whole round over the runs per blast, so each scoped client's share is exact.
    batch: TAGGED_RUNS,
    clients: () => router.clientCount(),
    cutOffs: () => router.stats().slowClientsCutOff,
  };
}
