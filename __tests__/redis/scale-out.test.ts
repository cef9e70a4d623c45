import { compareEnvelopeIds } from "../../lib/source";
import { SseStream } from "../helpers/sse";
import {
  connectionsNamed,
  type Deployment,
  delivered,
  deploy,
  describeRedis,
  expectedAfter,
  expectFullRun,
  expectRecordedOnce,
  type Fixture,
  newPrefix,
  readLog,
  stopDeployment,
} from "./support";

jest.setTimeout(60_000);

const WAIT_MS = 20_000;

describeRedis("several Express processes sharing one Redis", () => {
  const prefix = newPrefix("scale-out");
  let deployment: Deployment | undefined;
  const streams: SseStream[] = [];

  const runStream = async (server: Fixture, runId: string, headers: Record<string, string> = {}) => {
    const stream = await SseStream.open(`${server.url}/api/runs/${runId}/stream`, headers);
    streams.push(stream);
    return stream;
  };
  const globalStream = async (server: Fixture) => {
    const stream = await SseStream.open(`${server.url}/api/stream`);
    streams.push(stream);
    return stream;
  };
  const d = (): Deployment => deployment as Deployment;
  const write = <T>(op: string, ...args: unknown[]): Promise<T> => d().writer.request<T>(op, ...args);
  const server = (i: number): Fixture => d().servers[i] as Fixture;

  beforeAll(async () => {
    deployment = await deploy(prefix, 3);
  }, 60_000);

  afterEach(() => {
    for (const stream of streams.splice(0)) stream.close();
  });

  afterAll(async () => {
    await stopDeployment(deployment);
    await deployment?.admin.quit();
  }, 30_000);

  it("clients spread over three servers each receive every envelope of their run once, in order", async () => {
    await write("createRun", { id: "spread-a", total_units: 40 });
    await write("createRun", { id: "spread-b", total_units: 40 });
    const perRun = new Map<string, SseStream[]>([
      ["spread-a", []],
      ["spread-b", []],
    ]);
    const globals: SseStream[] = [];
    for (let i = 0; i < 3; i++) {
      perRun.get("spread-a")?.push(await runStream(server(i), "spread-a"), await runStream(server(i), "spread-a"));
      perRun.get("spread-b")?.push(await runStream(server(i), "spread-b"));
      globals.push(await globalStream(server(i)));
    }
    const all = [...(perRun.get("spread-a") ?? []), ...(perRun.get("spread-b") ?? [])];
    await Promise.all(all.map((stream) => stream.frameCount(1, WAIT_MS)));
    await Promise.all(globals.map((stream) => stream.frameCount(2, WAIT_MS)));

    // However many clients a process serves, it holds one command and one reader connection.
    const extra = await Promise.all(d().servers.flatMap((s) => Array.from({ length: 10 }, () => globalStream(s))));
    await Promise.all(extra.map((stream) => stream.frameCount(2, WAIT_MS)));
    for (const s of d().servers) expect(await s.request<number>("clientCount")).toBe(14);
    expect(await connectionsNamed(d().admin, `${prefix}:commands`)).toHaveLength(4); // three servers and the writer
    expect(await connectionsNamed(d().admin, `${prefix}:reader`)).toHaveLength(3); // the writer never subscribes

    await write("burst", ["spread-a", "spread-b"], 0, 40, 10);
    await write("completeRun", "spread-a", { status: "completed", completed_units: 40 });
    await write("completeRun", "spread-b", { status: "failed", completed_units: 39 });
    await Promise.all(all.map((stream) => stream.end(WAIT_MS)));
    await Promise.all(
      globals.map((stream) => stream.until(() => stream.of("complete").length === 2, "both completes", WAIT_MS)),
    );

    const log = await readLog(d().admin, prefix);
    expectRecordedOnce(log, "spread-a", 40);
    expectRecordedOnce(log, "spread-b", 40);
    for (const [runId, streamsOfRun] of perRun) {
      for (const stream of streamsOfRun) expectFullRun(stream.frames, log, runId);
    }
    for (const stream of globals) {
      const [first, second, ...live] = delivered(stream.frames);
      expect([first?.event, second?.event]).toEqual(["state", "state"]);
      expect(delivered(stream.frames.slice(2))).toEqual(expectedAfter(log, second?.id as string));
      expect(live.filter((frame) => frame.event === "event")).toHaveLength(80);
    }
  });

  it("a client that reconnects to another server with Last-Event-ID gets exactly what it missed", async () => {
    await write("createRun", { id: "hop" });
    const first = await runStream(server(0), "hop");
    await first.frameCount(1, WAIT_MS);
    await write("burst", ["hop"], 0, 10);
    await first.frameCount(11, WAIT_MS);
    first.close();
    const lastSeen = first.frames[first.frames.length - 1]?.id as string;

    await write("burst", ["hop"], 10, 20); // missed while away
    const second = await runStream(server(1), "hop", { "Last-Event-ID": lastSeen });
    await second.frameCount(10, WAIT_MS);
    await write("burst", ["hop"], 20, 25);
    await write("completeRun", "hop", { status: "completed" });
    await second.end(WAIT_MS);

    const log = await readLog(d().admin, prefix);
    expectRecordedOnce(log, "hop", 25);
    expect(second.frames[0]?.json.seq).toBe(10); // no snapshot: the missed frames come first
    expectFullRun(second.frames, log, "hop", lastSeen);

    // A third server, asked to resume at the complete, says there is nothing more to send.
    const done = await runStream(server(2), "hop", { "Last-Event-ID": second.frames.at(-1)?.id as string });
    expect(done.status).toBe(204);
  });

  it("clients joining each server mid-run get every envelope after their snapshot, once", async () => {
    await write("createRun", { id: "join", total_units: 300 });
    const watcher = await runStream(server(0), "join");
    await watcher.frameCount(1, WAIT_MS);
    const burst = write("burst", ["join"], 0, 300, 7);
    await watcher.until(() => watcher.of("event").length >= 30, "30 events", WAIT_MS);
    const joiners = await Promise.all(d().servers.flatMap((s) => [runStream(s, "join"), runStream(s, "join")]));
    await burst;
    await write("completeRun", "join", { status: "completed", completed_units: 300 });
    await Promise.all([watcher, ...joiners].map((stream) => stream.end(WAIT_MS)));

    const log = await readLog(d().admin, prefix);
    expectRecordedOnce(log, "join", 300);
    for (const stream of [watcher, ...joiners]) {
      expectFullRun(stream.frames, log, "join");
      // The snapshot is the state as of its cursor: the last update recorded at or before it.
      const snapshot = stream.frames[0];
      const cursor = snapshot?.id as string;
      const asOf = log.filter((e) => e.runId === "join" && e.type === "state" && compareEnvelopeIds(e.id, cursor) <= 0);
      expect(snapshot?.json).toEqual(asOf.at(-1)?.data);
    }
  });
});
