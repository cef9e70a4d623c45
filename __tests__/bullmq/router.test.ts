import { fork } from "node:child_process";
import path from "node:path";
import { FlowProducer, type Job, Worker } from "bullmq";
import type { BullMQRunSource } from "../../lib/bullmq/index";
import { serve, type TestServer } from "../helpers/server";
import { type SseFrame, SseStream } from "../helpers/sse";
import { Fixture } from "../redis/support";
import { connectionOptions, describeRedis, HeldJobs, newQueueName, REDIS_URL, within } from "./support";

jest.setTimeout(60_000);

const WAIT_MS = 20_000;

/** Frames as comparable values. */
function plain(frames: readonly SseFrame[]): { event: string; id: string | undefined; data: unknown }[] {
  return frames.map((frame) => ({ event: frame.event, id: frame.id, data: frame.json }));
}

/** The run's log as the source holds it, after `after` (from its start when absent), as frames. */
async function logAfter(source: BullMQRunSource, runId: string, after?: string) {
  const page = await source.readLog({ runId, after, limit: 10_000 });
  if (page === undefined || "gap" in page) throw new Error(`no log for ${runId}: ${JSON.stringify(page)}`);
  return page.envelopes.map((envelope) => ({ event: envelope.type, id: envelope.id, data: envelope.data }));
}

describeRedis("BullMQ jobs watched through the router", () => {
  let jobs: HeldJobs | undefined;
  let server: TestServer | undefined;
  const streams: SseStream[] = [];

  afterEach(async () => {
    for (const stream of streams.splice(0)) stream.close();
    await server?.close();
    server = undefined;
    await jobs?.close();
    jobs = undefined;
  });

  it("a flow's parent run shows its children as units, its logs and progress, then complete with the return value; and ?from=start gets the same run from its first envelope", async () => {
    const held = new HeldJobs(newQueueName("flow"));
    jobs = held;
    await held.ready();
    server = await serve(held.source);
    await held.worker.close();
    const flow = new FlowProducer({ connection: connectionOptions() });
    try {
      await flow.add({
        name: "report",
        queueName: held.name,
        opts: { jobId: "report-1" },
        children: [
          { name: "part", queueName: held.name, opts: { jobId: "part-a" } },
          { name: "part", queueName: held.name, opts: { jobId: "part-b" } },
        ],
      });
    } finally {
      await flow.close();
    }
    const live = await SseStream.open(`${server.url}/api/runs/report-1/stream`);
    streams.push(live);
    await live.frameCount(1, WAIT_MS);
    expect(live.frames[0]?.json).toMatchObject({ id: "report-1", status: "running", bullmq_state: "waiting-children" });

    // A real worker does the work: each child logs and reports progress; the parent sums up.
    const worker = new Worker(
      held.name,
      async (job: Job) => {
        await job.log(`${job.id} working`);
        await job.updateProgress(job.id === "report-1" ? { completed_units: 2, total_units: 2 } : 100);
        return job.id === "report-1" ? { parts: Object.keys(await job.getChildrenValues()).length } : job.id;
      },
      { connection: connectionOptions() },
    );
    try {
      await live.end(WAIT_MS);
    } finally {
      await worker.close();
    }
    const frames = live.frames;
    const units = frames
      .filter((frame) => frame.event === "event")
      .map((frame) => frame.json as { type: string; unit?: string });
    expect(
      units
        .filter((event) => event.type === "unit.started")
        .map((event) => event.unit)
        .sort(),
    ).toEqual(["part-a", "part-b"]);
    expect(
      units
        .filter((event) => event.type === "unit.completed")
        .map((event) => event.unit)
        .sort(),
    ).toEqual(["part-a", "part-b"]);
    expect(
      units.some((event) => event.type === "job.log" && (event as { message?: string }).message === "report-1 working"),
    ).toBe(true);
    expect(
      frames.some((frame) => frame.event === "state" && (frame.json as { progress?: unknown }).progress !== undefined),
    ).toBe(true);
    const complete = frames[frames.length - 1];
    expect(complete?.event).toBe("complete");
    expect(complete?.json).toMatchObject({ status: "completed", return_value: { parts: 2 }, completed_units: 2 });
    // Every frame after the snapshot is the source's log after the snapshot's cursor, once, in order.
    expect(plain(frames.slice(1))).toEqual(await logAfter(held.source, "report-1", frames[0]?.id));

    // From the start: the run's whole log, every frame with its id, ending with complete.
    const whole = await logAfter(held.source, "report-1");
    expect(whole[0]?.event).toBe("state");
    const fromStart = await SseStream.open(`${server.url}/api/runs/report-1/stream?from=start`);
    streams.push(fromStart);
    await fromStart.end(WAIT_MS);
    expect(plain(fromStart.frames)).toEqual(whole);
    // A resume after the run's first envelope gets every later frame of its log.
    const replayed = await SseStream.open(`${server.url}/api/runs/report-1/stream`, {
      "Last-Event-ID": whole[0]?.id as string,
    });
    streams.push(replayed);
    await replayed.end(WAIT_MS);
    expect(plain(replayed.frames)).toEqual(whole.slice(1));
    // The children are runs too, each ending with its own return value.
    const child = await SseStream.open(`${server.url}/api/runs/part-a/stream`);
    streams.push(child);
    await child.end(WAIT_MS);
    expect(child.of("complete")[0]?.json).toMatchObject({ status: "completed", return_value: "part-a" });
  });

  it("a watcher that connects mid-job gets the job's state so far, then every later frame once; with ?from=start it gets everything the job did", async () => {
    const held = new HeldJobs(newQueueName("midjob"));
    jobs = held;
    await held.ready();
    server = await serve(held.source);
    await held.queue.add("task", {}, { jobId: "task-1" });
    const { job, resolve } = await held.started("task-1");
    for (let step = 1; step <= 3; step++) {
      await job.log(`step ${step}`);
      await job.updateProgress({ completed_units: step, total_units: 6 });
    }
    const watcher = await SseStream.open(`${server.url}/api/runs/task-1/stream`);
    streams.push(watcher);
    const fromStart = await SseStream.open(`${server.url}/api/runs/task-1/stream?from=start`);
    streams.push(fromStart);
    await watcher.frameCount(1, WAIT_MS);
    expect(watcher.frames[0]?.json).toMatchObject({ status: "running", completed_units: 3, total_units: 6 });
    for (let step = 4; step <= 6; step++) {
      await job.log(`step ${step}`);
      await job.updateProgress({ completed_units: step, total_units: 6 });
    }
    resolve({ done: true });
    await watcher.end(WAIT_MS);
    const frames = watcher.frames;
    expect(plain(frames.slice(1))).toEqual(await logAfter(held.source, "task-1", frames[0]?.id));
    const logged = frames
      .filter((frame) => frame.event === "event")
      .map((frame) => (frame.json as { message: string }).message);
    expect(logged).toEqual(["step 4", "step 5", "step 6"]);
    expect(frames[frames.length - 1]?.json).toMatchObject({ status: "completed", return_value: { done: true } });
    // Joining mid-job with ?from=start: everything the job did, from its first state, once.
    await fromStart.end(WAIT_MS);
    expect(plain(fromStart.frames)).toEqual(await logAfter(held.source, "task-1"));
    expect(fromStart.of("event").map((frame) => (frame.json as { message: string }).message)).toEqual(
      Array.from({ length: 6 }, (_, i) => `step ${i + 1}`),
    );
  });

  it("a worker that crashes mid-job shows as stalled, then the retry's attempt runs to complete", async () => {
    const held = new HeldJobs(newQueueName("crash"));
    jobs = held;
    await held.ready();
    await held.worker.close();
    server = await serve(held.source);
    const child = fork(path.join(__dirname, "fixtures", "worker.ts"), [], {
      execArgv: ["-r", "ts-node/register/transpile-only"],
      env: {
        ...process.env,
        QUEUE: held.name,
        REDIS_URL,
        TS_NODE_COMPILER_OPTIONS: '{"module":"commonjs","moduleResolution":"node"}',
      },
      stdio: ["ignore", "inherit", "inherit", "ipc"],
    });
    const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
    let rescuer: Worker | undefined;
    try {
      await within(new Promise((resolve) => child.once("message", resolve)), "the crashing worker to start", WAIT_MS);
      await held.queue.add("task", { steps: 3, crashAtStep: 2 }, { jobId: "crashy-1" });
      const watcher = await SseStream.open(`${server.url}/api/runs/crashy-1/stream`);
      streams.push(watcher);
      expect(await within(exited, "the worker to crash", WAIT_MS)).toBe(1);
      // Another worker finds the job stalled (its lock expired) and runs it again.
      rescuer = new Worker(
        held.name,
        async (job: Job) => {
          for (let step = 1; step <= 3; step++) {
            await job.log(`attempt ${job.attemptsMade + 1}: step ${step}`);
            await job.updateProgress({ completed_units: step, total_units: 3 });
          }
          return { steps: 3 };
        },
        { connection: connectionOptions(), lockDuration: 1_000, stalledInterval: 500 },
      );
      await watcher.end(WAIT_MS);
      const states = watcher
        .of("state")
        .map((frame) => frame.json as { status: string; bullmq_state: string; attempt?: number });
      const stalledAt = states.findIndex((state) => state.bullmq_state === "stalled");
      expect(stalledAt).toBeGreaterThan(0);
      expect(states[stalledAt]?.status).toBe("pending");
      expect(
        states.slice(stalledAt).some((state) => state.bullmq_state === "active" && state.status === "running"),
      ).toBe(true);
      const lines = watcher.of("event").map((frame) => (frame.json as { message: string }).message);
      expect(lines).toContain("attempt 1: step 2");
      expect(lines.filter((line) => line.endsWith("step 3")).length).toBe(1);
      expect(watcher.of("complete")[0]?.json).toMatchObject({ status: "completed", return_value: { steps: 3 } });
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
      await exited;
      await rescuer?.close();
    }
  });

  it("a server process restarted mid-job resumes a client's Last-Event-ID and loses nothing (another process derives the same ids)", async () => {
    const held = new HeldJobs(newQueueName("restart"));
    jobs = held;
    await held.ready();
    const env = { QUEUE: held.name, REDIS_URL };
    const serverFile = path.join("..", "..", "bullmq", "fixtures", "server.ts");
    const before = await Fixture.start(serverFile, "server before the restart", env);
    let after: Fixture | undefined;
    try {
      await held.queue.add("task", {}, { jobId: "long-1" });
      const { job, resolve } = await held.started("long-1");
      const first = await SseStream.open(`${before.url}/api/runs/long-1/stream`);
      streams.push(first);
      await first.frameCount(1, WAIT_MS);
      await job.log("before restart");
      await first.until(() => first.of("event").length === 1, "the first log line", WAIT_MS);
      const lastId = first.frames[first.frames.length - 1]?.id as string;
      await before.stop();
      first.close();

      // While no server runs, the job goes on.
      await job.log("during restart");
      await job.updateProgress({ completed_units: 1, total_units: 2 });
      after = await Fixture.start(serverFile, "server after the restart", env);
      const resumed = await SseStream.open(`${after.url}/api/runs/long-1/stream`, { "Last-Event-ID": lastId });
      streams.push(resumed);
      await resumed.frameCount(1, WAIT_MS);
      await job.log("after restart");
      resolve("finished");
      await resumed.end(WAIT_MS);
      expect(resumed.of("resync")).toEqual([]);
      // This process's own source derives the very frames the restarted process sent.
      expect(plain(resumed.frames)).toEqual(await logAfter(held.source, "long-1", lastId));
      expect(resumed.of("event").map((frame) => (frame.json as { message: string }).message)).toEqual([
        "during restart",
        "after restart",
      ]);
      expect(resumed.of("complete")[0]?.json).toMatchObject({ status: "completed", return_value: "finished" });
    } finally {
      await before.stop();
      await after?.stop();
    }
  });
});
