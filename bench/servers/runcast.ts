import { MemoryRunSource, sseRouter } from "../../lib/index";
import { type BenchEvent, RUN_ID } from "../protocol";
import { expressServer } from "./shared";
import type { Fanout } from "./types";

/** runcast as its README shows it: `sseRouter` over a `MemoryRunSource`, mounted in Express, defaults throughout. */
export function createFanout(): Fanout {
  const source = new MemoryRunSource();
  source.createRun({ id: RUN_ID, status: "running", total_units: 1000 });
  const router = sseRouter(source);
  return {
    ...expressServer(router),
    publish(event: BenchEvent): void {
      source.recordEvent(RUN_ID, event);
    },
    clients: () => router.clientCount(),
    cutOffs: () => router.stats().slowClientsCutOff,
  };
}
