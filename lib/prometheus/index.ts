/**
 * `runcast/prometheus`: a router's counters as Prometheus metrics, on a `prom-client` registry.
 * Metrics are read from `router.stats()` when the registry is scraped; nothing is added to
 * the path frames take.
 *
 * @packageDocumentation
 */
import { Counter, register as defaultRegistry, Gauge, Histogram, type Registry } from "prom-client";
import type { SseRouter, SseRouterStats } from "../router";

/** Names of the metrics, without prefix. */
const METRIC_NAMES = [
  "clients",
  "sent_frames_total",
  "sent_bytes_total",
  "clients_ended_total",
  "stream_starts_total",
  "replay_frames",
  "resume_cache_hits_total",
  "resume_cache_bytes",
  "invalid_envelopes_total",
  "source_errors_total",
  "source_lag_entries",
  "source_lag_seconds",
] as const;
type MetricName = (typeof METRIC_NAMES)[number];

/** Options of {@link collectMetrics}. */
export interface CollectMetricsOptions {
  /** The registry to register on. @default prom-client's default registry (`register`) */
  registry?: Registry;
  /**
   * Put before every metric name, e.g. `"api_"` gives `api_runcast_clients`: for two routers
   * on one registry. @default ""
   */
  prefix?: string;
}

/** What {@link collectMetrics} registered. */
export interface RuncastMetrics {
  /** The names of the metrics registered, prefix included. */
  readonly names: readonly string[];
  /** Removes them from the registry (for a router that is gone, or tests). */
  unregister(): void;
}

/**
 * A histogram whose buckets, sum and count are the router's own (it counts replay sizes as it
 * serves them), rather than observations made through prom-client. prom-client renders a
 * metric's text from `getForPromString()` when it has one, and builds `get()` on it.
 */
class RouterHistogram extends Histogram<string> {
  readonly #name: string;
  readonly #help: string;
  readonly #read: () => SseRouterStats["replaySizes"];

  constructor(name: string, help: string, registry: Registry, read: () => SseRouterStats["replaySizes"]) {
    super({ name, help, buckets: read().buckets.map((bucket) => bucket.le), registers: [registry] });
    this.#name = name;
    this.#help = help;
    this.#read = read;
  }

  async getForPromString(): Promise<unknown> {
    const { buckets, sum, count } = this.#read();
    const value = (metricName: string, labels: Record<string, string | number>, v: number) => ({
      metricName,
      labels,
      sharedLabels: {},
      value: v,
    });
    return {
      name: this.#name,
      help: this.#help,
      type: "histogram",
      aggregator: "sum",
      values: [
        ...buckets.map((bucket) => value(`${this.#name}_bucket`, { le: bucket.le }, bucket.count)),
        value(`${this.#name}_bucket`, { le: "+Inf" }, count),
        value(`${this.#name}_sum`, {}, sum),
        value(`${this.#name}_count`, {}, count),
      ],
    };
  }
}

/**
 * Registers runcast's metrics for `router` on a prom-client registry (prom-client is an
 * optional peer dependency: install it to use this entry). Every value is read from
 * `router.stats()` at scrape time:
 *
 * | metric | type | labels |
 * | --- | --- | --- |
 * | `runcast_clients` | gauge | `stream`: `run`, `global` |
 * | `runcast_sent_frames_total` | counter | |
 * | `runcast_sent_bytes_total` | counter | |
 * | `runcast_clients_ended_total` | counter | `reason`: see `EndReason` |
 * | `runcast_stream_starts_total` | counter | `outcome`: `fresh`, `replayed`, `resync` |
 * | `runcast_replay_frames` | histogram | frames per resume served from the log |
 * | `runcast_resume_cache_hits_total` | counter | resumes begun from the router's memory of recent frames |
 * | `runcast_resume_cache_bytes` | gauge | frame text held there (option `resumeCacheBytes`) |
 * | `runcast_invalid_envelopes_total` | counter | |
 * | `runcast_source_errors_total` | counter | |
 * | `runcast_source_lag_entries`, `runcast_source_lag_seconds` | gauge | only for sources that report lag (`NaN` until measured) |
 *
 * @throws Error when runcast's metrics are already registered on the registry (pass another `prefix`).
 */
export function collectMetrics(router: SseRouter, options: CollectMetricsOptions = {}): RuncastMetrics {
  const registry = options.registry ?? defaultRegistry;
  const prefix = options.prefix ?? "";
  const registers = [registry];
  const first = router.stats();
  const names: string[] = [];
  const name = (base: MetricName): string => {
    const full = `${prefix}runcast_${base}`;
    names.push(full);
    return full;
  };
  // Checked before registering anything, so a refusal leaves nothing half-registered.
  const taken = METRIC_NAMES.map((base) => `${prefix}runcast_${base}`).filter(
    (full) => registry.getSingleMetric(full) !== undefined,
  );
  if (taken.length > 0) {
    throw new Error(
      `runcast metrics are already registered on this registry (${taken.join(", ")}): pass another prefix`,
    );
  }

  /** A counter whose value is the router's running total, set at each scrape. */
  const total = (base: MetricName, help: string, read: (stats: SseRouterStats) => number): void => {
    new Counter({
      name: name(base),
      help,
      registers,
      collect() {
        this.reset();
        this.inc(read(router.stats()));
      },
    });
  };
  /** A counter with one label, over a fixed set of values (all present, 0 included). */
  const totals = <L extends string>(
    base: MetricName,
    help: string,
    label: L,
    read: (stats: SseRouterStats) => Record<string, number>,
  ): void => {
    new Counter<L>({
      name: name(base),
      help,
      labelNames: [label],
      registers,
      collect() {
        this.reset();
        for (const [value, count] of Object.entries(read(router.stats()))) {
          this.inc({ [label]: value } as Partial<Record<L, string>>, count);
        }
      },
    });
  };

  new Gauge<"stream">({
    name: name("clients"),
    help: "Clients connected now, by stream: run (per-run streams) or global.",
    labelNames: ["stream"],
    registers,
    collect() {
      const { run, global } = router.stats().clientsByStream;
      this.set({ stream: "run" }, run);
      this.set({ stream: "global" }, global);
    },
  });
  total("sent_frames_total", "Frames written to clients (one frame to ten clients counts ten).", (s) => s.framesSent);
  total("sent_bytes_total", "Bytes of frames written to clients.", (s) => s.bytesSent);
  totals(
    "clients_ended_total",
    "Streams the server ended, by reason (a client's own disconnects are not counted).",
    "reason",
    (s) => s.clientsEnded,
  );
  totals(
    "stream_starts_total",
    "Streams started, by outcome: fresh (no resume asked), replayed (served exactly from the log), resync.",
    "outcome",
    (s) => s.streamStarts,
  );
  new RouterHistogram(
    name("replay_frames"),
    "Frames written from the log by each resume served from it.",
    registry,
    () => router.stats().replaySizes,
  );
  total(
    "resume_cache_hits_total",
    "Resumes begun from the router's memory of recent frames, without reading the source's log.",
    (s) => s.resumeCache.hits,
  );
  new Gauge({
    name: name("resume_cache_bytes"),
    help: "Frame text held in the router's memory of recent frames (option resumeCacheBytes).",
    registers,
    collect() {
      this.set(router.stats().resumeCache.bytes);
    },
  });
  total(
    "invalid_envelopes_total",
    "Envelopes from the source rejected by validation (dropped).",
    (s) => s.invalidEnvelopes,
  );
  total("source_errors_total", "Source reads that threw, rejected or timed out.", (s) => s.sourceErrors);
  if (first.sourceLag !== undefined) {
    const lag = (base: MetricName, help: string, read: (stats: SseRouterStats) => number | undefined): void => {
      new Gauge({
        name: name(base),
        help,
        registers,
        collect() {
          this.set(read(router.stats()) ?? Number.NaN);
        },
      });
    };
    lag(
      "source_lag_entries",
      "Envelopes recorded that the source's reader has not delivered yet (NaN until measured).",
      (s) => s.sourceLag?.entries,
    );
    lag(
      "source_lag_seconds",
      "How far the source's reader is behind the newest recorded envelope, in seconds (NaN until measured).",
      (s) => (s.sourceLag?.ms === undefined ? undefined : s.sourceLag.ms / 1000),
    );
  }

  return {
    names,
    unregister: () => {
      for (const metric of names) registry.removeSingleMetric(metric);
    },
  };
}
