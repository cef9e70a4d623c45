import { compareEnvelopeIds, type Envelope, MemoryRunSource } from "../../lib/index";
import { serve, type TestServer, within } from "../helpers/server";
import { SseStream } from "../helpers/sse";

const RUNS = ["alpha", "beta", "gamma"];
const EVENTS = 3000;
const CLIENTS_PER_RUN = 10;
const GLOBAL_CLIENTS = 6;
const FROM_START_CLIENTS_PER_RUN = 3;

/** A deterministic PRNG, so a failure can be replayed. */
function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

type Frame = [event: string, id: string | undefined];

interface Received {
  /** Every frame this client parsed across its connections: [event, id]. */
  frames: Frame[];
  connections: number;
}

/**
 * A client that keeps dropping: each connection reads a random number of frames, then
 * hangs up and reconnects with the last id it saw, until it has seen what ends its watch.
 */
async function churningClient(url: string, random: () => number, done: (r: Received) => boolean): Promise<Received> {
  const received: Received = { frames: [], connections: 0 };
  let lastId: string | undefined;
  while (!done(received)) {
    const stream = await SseStream.open(url, lastId === undefined ? {} : { "Last-Event-ID": lastId });
    received.connections++;
    const quota = 1 + Math.floor(random() * 60);
    const startAt = received.frames.length;
    try {
      // Also stops once everything this client waits for has arrived (what it waits for ends
      // with a complete): after the last write a global stream stays open with nothing to send.
      const seenAll = (): boolean =>
        stream.frames.at(-1)?.event === "complete" &&
        done({ frames: [...received.frames, ...stream.frames.map((f): Frame => [f.event, f.id])], connections: 0 });
      await stream.until(() => stream.frames.length >= quota || stream.ended || seenAll(), `${quota} frames`, 15_000);
    } finally {
      stream.close();
    }
    for (const frame of stream.frames) received.frames.push([frame.event, frame.id]);
    if (received.frames.length > startAt) lastId = received.frames.at(-1)?.[1] ?? lastId;
    // Dropped inside a first snapshot (its frames before the last carry no id): the next one replaces it.
    if (lastId === undefined) received.frames.length = 0;
    if (stream.status === 204) break;
  }
  return received;
}

describe("churn: clients dropping and reconnecting at random while thousands of events are recorded", () => {
  let source: MemoryRunSource;
  let t: TestServer;
  const recorded: Envelope[] = [];

  beforeAll(async () => {
    source = new MemoryRunSource({ historySize: EVENTS * 2 });
    source.subscribe((e) => recorded.push(e));
    t = await serve(source, { heartbeatMs: 60_000 });
  });
  afterAll(() => t.close());

  it("every client ends with exactly the recorded sequence of its run, once, in order", async () => {
    for (const id of RUNS) source.createRun({ id, total_units: EVENTS });
    const startedAt = source.lastId as string;
    const random = prng(20261124);

    const perRun = RUNS.flatMap((run) =>
      [...Array(CLIENTS_PER_RUN)].map(() =>
        churningClient(`${t.url}/api/runs/${run}/stream`, prng(Math.floor(random() * 1e9)), (r) =>
          r.frames.some(([event]) => event === "complete"),
        ).then((r) => ({ run, r })),
      ),
    );
    // Clients that ask for each run's whole log (`?from=start`); their reconnects keep the URL
    // and add Last-Event-ID, as a browser's do. They join while the writer runs.
    const fromStart = RUNS.flatMap((run) =>
      [...Array(FROM_START_CLIENTS_PER_RUN)].map((_, i) =>
        new Promise<void>((resolve) => setTimeout(resolve, 5 + i * 20)).then(() =>
          churningClient(`${t.url}/api/runs/${run}/stream?from=start`, prng(Math.floor(random() * 1e9)), (r) =>
            r.frames.some(([event]) => event === "complete"),
          ).then((r) => ({ run, r })),
        ),
      ),
    );
    const global = [...Array(GLOBAL_CLIENTS)].map(() =>
      churningClient(`${t.url}/api/stream`, prng(Math.floor(random() * 1e9)), (r) =>
        RUNS.every((_, i) => r.frames.filter(([event]) => event === "complete").length > i),
      ),
    );

    // The writer: bursts of random size on successive turns of the event loop.
    let n = 0;
    await new Promise<void>((resolve) => {
      const write = (): void => {
        const burst = 1 + Math.floor(random() * 40);
        for (let i = 0; i < burst && n < EVENTS; i++, n++) {
          const run = RUNS[n % RUNS.length] as string;
          if (n % 7 === 0) source.updateRun(run, { status: "running", completed_units: n });
          else source.recordEvent(run, { type: "unit.progress", n });
        }
        if (n < EVENTS) setImmediate(write);
        else {
          for (const run of RUNS) source.completeRun(run, { status: "completed", completed_units: EVENTS });
          resolve();
        }
      };
      write();
    });

    const results = await within(
      Promise.all([Promise.all(perRun), Promise.all(global), Promise.all(fromStart)]),
      "every client to finish",
      60_000,
    );
    const after = (id: string | undefined) => id !== undefined && compareEnvelopeIds(id, startedAt) > 0;
    const live = recorded.filter((e) => after(e.id));

    for (const { run, r } of results[0]) {
      // The first frame is the snapshot; everything else must be the run's envelopes after it, exactly.
      const [first, ...rest] = r.frames;
      expect(first?.[0]).toBe("state");
      const expected = live.filter(
        (e) => e.runId === run && compareEnvelopeIds(e.id as string, first?.[1] as string) > 0,
      );
      expect(rest).toEqual(expected.map((e) => [e.type, e.id]));
      expect(r.connections).toBeGreaterThan(3);
    }
    for (const r of results[1]) {
      const snapshots = r.frames.slice(0, RUNS.length);
      expect(snapshots.map(([event]) => event)).toEqual(RUNS.map(() => "state"));
      const cursor = snapshots.at(-1)?.[1] as string;
      const expected = live.filter((e) => compareEnvelopeIds(e.id as string, cursor) > 0);
      expect(r.frames.slice(RUNS.length)).toEqual(expected.map((e) => [e.type, e.id]));
    }
    for (const { run, r } of results[2]) {
      // The run's whole log, from its first state, exactly once, in order.
      expect(r.frames).toEqual(recorded.filter((e) => e.runId === run).map((e) => [e.type, e.id]));
      expect(r.connections).toBeGreaterThan(3);
    }
    expect(t.router.stats().slowClientsCutOff).toBe(0);
  }, 90_000);
});
