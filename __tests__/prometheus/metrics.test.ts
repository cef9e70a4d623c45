import { Registry } from "prom-client";
import { type Envelope, MemoryRunSource, type RunSnapshot, type SourceLag } from "../../lib/index";
import { collectMetrics, type RuncastMetrics } from "../../lib/prometheus";
import { get } from "../helpers/http-get";
import { parsePrometheusText, sampleValue } from "../helpers/prometheus-text";
import { eventually, serve, type TestServer } from "../helpers/server";
import { SseStream } from "../helpers/sse";

/**
 * A MemoryRunSource that can also push an invalid value to subscribers, fail one snapshot
 * read, and report a reader lag: the faults a networked adapter has, made on purpose.
 */
class ScriptedSource extends MemoryRunSource {
  readonly #listeners = new Set<(envelope: Envelope) => void>();
  failNextSnapshot = false;
  reportedLag: SourceLag | undefined;

  override subscribe(listener: (envelope: Envelope) => void): () => void {
    this.#listeners.add(listener);
    const off = super.subscribe(listener);
    return () => {
      this.#listeners.delete(listener);
      off();
    };
  }
  override snapshot(runId?: string): RunSnapshot | undefined {
    if (this.failNextSnapshot) {
      this.failNextSnapshot = false;
      throw new Error("the store is unreachable");
    }
    return super.snapshot(runId);
  }
  lag(): SourceLag | undefined {
    return this.reportedLag;
  }
  inject(value: unknown): void {
    for (const listener of this.#listeners) listener(value as Envelope);
  }
}

/** Bytes of frames a client received: everything but the `retry:` field the stream opened with. */
function frameBytes(stream: SseStream): number {
  return Buffer.byteLength(stream.raw.replace(/^retry: ?\d+\n\n?/, ""));
}

const PAD = "x".repeat(8 * 1024);

describe("runcast/prometheus scraped over HTTP", () => {
  let source: ScriptedSource;
  let t: TestServer;
  let registry: Registry;
  let metrics: RuncastMetrics;
  const opened: SseStream[] = [];

  beforeEach(async () => {
    source = new ScriptedSource({ historySize: 10_000 });
    registry = new Registry();
    t = await serve(source, { heartbeatMs: 60_000, maxBufferedBytes: 64 * 1024 }, (app) => {
      app.get("/metrics", async (_req, res) => {
        res.set("Content-Type", registry.contentType);
        res.end(await registry.metrics());
      });
    });
    metrics = collectMetrics(t.router, { registry });
  });
  afterEach(async () => {
    for (const stream of opened.splice(0)) stream.close();
    metrics.unregister();
    await t.close();
  });

  async function scrape(): Promise<ReturnType<typeof parsePrometheusText>> {
    const res = await get(`${t.url}/metrics`);
    expect(res.status).toBe(200);
    expect(res.type).toContain("text/plain");
    return parsePrometheusText(res.body);
  }

  it("after connects, a resume, a resync, a source error, an invalid envelope and a slow client cut off, the values are what happened", async () => {
    source.createRun({ id: "r" });
    source.reportedLag = { entries: 3, ms: 1500 };
    const open = async (path: string, headers: Record<string, string> = {}): Promise<SseStream> => {
      const stream = await SseStream.open(`${t.url}${path}`, headers);
      opened.push(stream);
      return stream;
    };

    // Three fresh connects: two on the run, one global.
    const a = await open("/api/runs/r/stream");
    const b = await open("/api/runs/r/stream");
    const g = await open("/api/stream");
    await Promise.all([a, b, g].map((s) => s.frameCount(1)));
    const first = source.recordEvent("r", { type: "unit.started", n: 0 });
    source.recordEvent("r", { type: "unit.progress", n: 1 });
    source.recordEvent("r", { type: "unit.progress", n: 2 });
    // A resume served from the log (two frames missed), and one that resyncs (an id the log never had).
    const c = await open("/api/runs/r/stream", { "Last-Event-ID": first.id as string });
    const d = await open("/api/runs/r/stream", { "Last-Event-ID": "1-1" });
    // A connect whose snapshot read fails: 500, a source error.
    source.failNextSnapshot = true;
    const failed = await get(`${t.url}/api/runs/r/stream`);
    expect(failed.status).toBe(500);
    await Promise.all([a, b, g].map((s) => s.frameCount(4)));
    await c.frameCount(2);
    await d.frameCount(2);
    expect(c.frames.map((f) => f.json.n)).toEqual([1, 2]);
    expect(d.frames.map((f) => f.event)).toEqual(["resync", "state"]);

    let families = await scrape();
    const clients = [a, b, g, c, d];
    const framesReceived = clients.reduce((sum, s) => sum + s.frames.length, 0);
    const bytesReceived = clients.reduce((sum, s) => sum + frameBytes(s), 0);
    expect(sampleValue(families, "runcast_clients", { stream: "run" })).toBe(4);
    expect(sampleValue(families, "runcast_clients", { stream: "global" })).toBe(1);
    expect(sampleValue(families, "runcast_sent_frames_total")).toBe(framesReceived);
    expect(sampleValue(families, "runcast_sent_bytes_total")).toBe(bytesReceived);
    expect(sampleValue(families, "runcast_stream_starts_total", { outcome: "fresh" })).toBe(3);
    expect(sampleValue(families, "runcast_stream_starts_total", { outcome: "replayed" })).toBe(1);
    expect(sampleValue(families, "runcast_stream_starts_total", { outcome: "resync" })).toBe(1);
    expect(sampleValue(families, "runcast_replay_frames_count")).toBe(1);
    expect(sampleValue(families, "runcast_replay_frames_sum")).toBe(2);
    expect(sampleValue(families, "runcast_replay_frames_bucket", { le: "1" })).toBe(0);
    expect(sampleValue(families, "runcast_replay_frames_bucket", { le: "10" })).toBe(1);
    expect(sampleValue(families, "runcast_replay_frames_bucket", { le: "+Inf" })).toBe(1);
    // The resume began from the router's memory of the frames it had just delivered live.
    expect(sampleValue(families, "runcast_resume_cache_hits_total")).toBe(1);
    expect(sampleValue(families, "runcast_resume_cache_bytes")).toBe(t.router.stats().resumeCache.bytes);
    expect(t.router.stats().resumeCache.bytes).toBeGreaterThan(0);
    expect(sampleValue(families, "runcast_source_errors_total")).toBe(1);
    expect(sampleValue(families, "runcast_invalid_envelopes_total")).toBe(0);
    expect(sampleValue(families, "runcast_source_lag_entries")).toBe(3);
    expect(sampleValue(families, "runcast_source_lag_seconds")).toBe(1.5);

    // An invalid envelope from the source: dropped and counted.
    source.inject({ type: "event", runId: "r", data: { type: "NOT VALID" } });
    // A client that stops reading while large events flow: cut off.
    const slow = await open("/api/runs/r/stream");
    await slow.frameCount(1);
    slow.pause();
    let n = 3;
    await eventually(
      () => {
        if (t.router.stats().clientsEnded.slow > 0) return true;
        for (let i = 0; i < 10; i++) source.recordEvent("r", { type: "unit.progress", n: n++, pad: PAD });
        return false;
      },
      "the slow client to be cut off",
      15_000,
    );
    await eventually(() => t.router.clientCount() === 5, "the slow client to leave");
    source.reportedLag = { entries: 0, ms: 0 };

    families = await scrape();
    expect(sampleValue(families, "runcast_clients", { stream: "run" })).toBe(4);
    expect(sampleValue(families, "runcast_clients", { stream: "global" })).toBe(1);
    expect(sampleValue(families, "runcast_clients_ended_total", { reason: "slow" })).toBe(1);
    for (const reason of ["complete", "drain", "max_duration", "token_expiry", "gap", "error"]) {
      expect(sampleValue(families, "runcast_clients_ended_total", { reason })).toBe(0);
    }
    expect(sampleValue(families, "runcast_stream_starts_total", { outcome: "fresh" })).toBe(4);
    expect(sampleValue(families, "runcast_invalid_envelopes_total")).toBe(1);
    expect(sampleValue(families, "runcast_source_errors_total")).toBe(1);
    expect(sampleValue(families, "runcast_source_lag_entries")).toBe(0);
    expect(sampleValue(families, "runcast_source_lag_seconds")).toBe(0);
    const stats = t.router.stats();
    expect(sampleValue(families, "runcast_sent_frames_total")).toBe(stats.framesSent);
    expect(sampleValue(families, "runcast_sent_bytes_total")).toBe(stats.bytesSent);

    // Every family is typed as Prometheus expects: counters end in _total, and nothing else is there.
    const types = Object.fromEntries([...families.values()].map((f) => [f.name, f.type]));
    expect(types).toEqual({
      runcast_clients: "gauge",
      runcast_sent_frames_total: "counter",
      runcast_sent_bytes_total: "counter",
      runcast_clients_ended_total: "counter",
      runcast_stream_starts_total: "counter",
      runcast_replay_frames: "histogram",
      runcast_resume_cache_hits_total: "counter",
      runcast_resume_cache_bytes: "gauge",
      runcast_invalid_envelopes_total: "counter",
      runcast_source_errors_total: "counter",
      runcast_source_lag_entries: "gauge",
      runcast_source_lag_seconds: "gauge",
    });
  }, 30_000);

  it("a lag() that throws or answers nonsense is reported or ignored, never a failed scrape", async () => {
    const errors: unknown[] = [];
    const own = await serve(source, { onError: (error) => errors.push(error) });
    const ownRegistry = new Registry();
    const ownMetrics = collectMetrics(own.router, { registry: ownRegistry });
    try {
      source.reportedLag = { entries: -1, ms: Number.NaN };
      expect(own.router.stats().sourceLag).toEqual({});
      let families = parsePrometheusText(await ownRegistry.metrics());
      expect(sampleValue(families, "runcast_source_lag_entries")).toBeNaN();
      source.reportedLag = "soon" as unknown as SourceLag;
      expect(own.router.stats().sourceLag).toEqual({});
      source.lag = () => {
        throw new Error("lag unknown");
      };
      families = parsePrometheusText(await ownRegistry.metrics());
      expect(sampleValue(families, "runcast_source_lag_seconds")).toBeNaN();
      expect(errors.some((e) => e instanceof Error && e.message === "lag unknown")).toBe(true);
    } finally {
      ownMetrics.unregister();
      await own.close();
    }
  });

  it("counts a stream ended by its run's complete, and one ended by close(), by their reasons", async () => {
    source.createRun({ id: "r" });
    source.createRun({ id: "stays" });
    const done = await SseStream.open(`${t.url}/api/runs/r/stream`);
    const stays = await SseStream.open(`${t.url}/api/runs/stays/stream`);
    opened.push(done, stays);
    await Promise.all([done.frameCount(1), stays.frameCount(1)]);
    source.completeRun("r", { status: "completed" });
    await done.end();
    await t.router.close();
    await stays.end();
    // The router is closed but /metrics is an ordinary route: it still answers.
    const families = await scrape();
    expect(sampleValue(families, "runcast_clients_ended_total", { reason: "complete" })).toBe(1);
    expect(sampleValue(families, "runcast_clients_ended_total", { reason: "drain" })).toBe(1);
    expect(sampleValue(families, "runcast_clients", { stream: "run" })).toBe(0);
  });

  it("registers on the default registry unless told otherwise, with an optional prefix; a source without lag has no lag metrics", async () => {
    const { register } = await import("prom-client");
    const plain = await serve(new MemoryRunSource());
    const onDefault = collectMetrics(plain.router, { prefix: "edge_" });
    try {
      const families = parsePrometheusText(await register.metrics());
      expect(families.get("edge_runcast_clients")?.type).toBe("gauge");
      expect(families.has("edge_runcast_source_lag_seconds")).toBe(false);
      expect(onDefault.names).toContain("edge_runcast_sent_bytes_total");
      // The same names again on the same registry are refused; another prefix is fine.
      expect(() => collectMetrics(plain.router, { prefix: "edge_" })).toThrow(/already registered/);
    } finally {
      onDefault.unregister();
      await plain.close();
    }
    expect(parsePrometheusText(await register.metrics()).has("edge_runcast_clients")).toBe(false);
  });
});
