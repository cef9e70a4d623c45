import { SseStream } from "../helpers/sse";
import {
  type Deployment,
  deploy,
  describeRedis,
  expectFullRun,
  expectRecordedOnce,
  type Fixture,
  newPrefix,
  readLog,
  stopDeployment,
} from "./support";

jest.setTimeout(60_000);

const WAIT_MS = 20_000;
const DRAIN_MS = 2_000;
const CLIENTS = 30;

describeRedis("a deploy: one process drains, its clients resume on another", () => {
  const prefix = newPrefix("drain");
  let deployment: Deployment | undefined;
  const streams: SseStream[] = [];

  beforeAll(async () => {
    deployment = await deploy(prefix, 2);
  }, 60_000);

  afterAll(async () => {
    for (const stream of streams.splice(0)) stream.close();
    await stopDeployment(deployment);
    await deployment?.admin.quit();
  }, 30_000);

  it("close({ drainMs }) ends the streams spread over the window while events flow; each resumes elsewhere with no loss or duplicate", async () => {
    const { servers, writer, admin } = deployment as Deployment;
    const [leaving, staying] = servers as [Fixture, Fixture];
    const write = <T>(op: string, ...args: unknown[]): Promise<T> => writer.request<T>(op, ...args);
    await write("createRun", { id: "deploy" });
    const open = async (server: Fixture, headers: Record<string, string> = {}): Promise<SseStream> => {
      const stream = await SseStream.open(`${server.url}/api/runs/deploy/stream`, headers);
      streams.push(stream);
      return stream;
    };
    const first = await Promise.all(Array.from({ length: CLIENTS }, () => open(leaving)));
    await Promise.all(first.map((s) => s.frameCount(1, WAIT_MS)));

    // Each client, once its stream ends, reconnects to the other process from its last id, as a browser would.
    const started = performance.now();
    const ends: number[] = [];
    const resumed = first.map((s) =>
      s.end(WAIT_MS).then(() => {
        ends.push(performance.now() - started);
        const lastId = s.frames.filter((f) => f.id !== undefined).at(-1)?.id as string;
        return open(staying, { "Last-Event-ID": lastId });
      }),
    );
    let drained = false;
    const draining = leaving.request<void>("drain", DRAIN_MS).then(() => {
      drained = true;
    });
    // Events keep coming during the whole deploy.
    let seq = 0;
    while (!drained) {
      await write("burst", ["deploy"], seq, seq + 3);
      seq += 3;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    await draining;
    const second = await Promise.all(resumed);
    await write("burst", ["deploy"], seq, seq + 3);
    seq += 3;
    await write("completeRun", "deploy", { status: "completed" });
    await Promise.all(second.map((s) => s.end(WAIT_MS)));

    expect(ends).toHaveLength(CLIENTS);
    expect(Math.max(...ends) - Math.min(...ends)).toBeGreaterThan(DRAIN_MS * 0.6);
    const log = await readLog(admin, prefix);
    expectRecordedOnce(log, "deploy", seq);
    for (const [i, s] of second.entries()) {
      // The first stream's frames, then the second's, read as one stream: snapshot, every envelope once, complete.
      const firstFrames = (first[i] as SseStream).frames;
      expect(s.of("resync")).toEqual([]);
      expectFullRun([...firstFrames, ...s.frames], log, "deploy");
    }
  });
});
