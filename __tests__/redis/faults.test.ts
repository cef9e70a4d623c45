import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { SseStream } from "../helpers/sse";
import {
  type Deployment,
  delivered,
  deploy,
  describeRedis,
  expectedAfter,
  expectFullRun,
  expectRecordedOnce,
  freePort,
  killConnections,
  newPrefix,
  RedisServerProcess,
  readLog,
  stopDeployment,
} from "./support";

jest.setTimeout(90_000);

const WAIT_MS = 30_000;

async function tearDown(deployment: Deployment | undefined): Promise<void> {
  await stopDeployment(deployment);
  deployment?.admin.disconnect();
}

/**
 * Runs one run past a fault: clients on both servers (two per run, one global each), 50
 * events, then a burst of 250 more sent at once with `fault` striking while it is being
 * delivered, 20 more after, and the `complete`. Every client, still on its first connection,
 * must end holding the full sequence, and the log must hold each event once.
 */
async function runThrough(deployment: Deployment, runId: string, fault: () => Promise<void>): Promise<void> {
  const { servers, writer, admin, prefix } = deployment;
  const streams: SseStream[] = [];
  try {
    await writer.request("createRun", { id: runId });
    for (const server of servers) {
      streams.push(await SseStream.open(`${server.url}/api/runs/${runId}/stream`));
      streams.push(await SseStream.open(`${server.url}/api/runs/${runId}/stream`));
    }
    const globals = await Promise.all(servers.map((server) => SseStream.open(`${server.url}/api/stream`)));
    const [watcher] = streams as [SseStream];
    await Promise.all([...streams, ...globals].map((stream) => stream.frameCount(1, WAIT_MS)));

    await writer.request("burst", [runId], 0, 50);
    await watcher.until(() => watcher.of("event").length >= 50, "50 events", WAIT_MS);
    const burst = writer.request("burst", [runId], 50, 300);
    await watcher.until(() => watcher.of("event").length >= 80, "80 events", WAIT_MS);
    await fault();
    await burst;
    await writer.request("burst", [runId], 300, 320);
    await writer.request("completeRun", runId, { status: "completed", completed_units: 320 });
    await Promise.all(streams.map((stream) => stream.end(WAIT_MS)));
    await Promise.all(
      globals.map((stream) => stream.until(() => stream.of("complete").length === 1, "the complete", WAIT_MS)),
    );

    const log = await readLog(admin, prefix);
    expectRecordedOnce(log, runId, 320);
    for (const stream of streams) expectFullRun(stream.frames, log, runId);
    for (const stream of globals) {
      const [snapshot, ...live] = delivered(stream.frames);
      expect(snapshot?.data).toMatchObject({ id: runId });
      expect(live).toEqual(expectedAfter(log, snapshot?.id as string));
    }
    expect(globals.every((stream) => !stream.ended)).toBe(true);
    streams.push(...globals);
  } finally {
    for (const stream of streams) stream.close();
  }
}

describeRedis("faults while clients watch a run", () => {
  describe("a killed connection", () => {
    let deployment: Deployment | undefined;

    beforeAll(async () => {
      deployment = await deploy(newPrefix("faults-kill"), 2);
    }, 60_000);

    afterAll(() => tearDown(deployment), 30_000);

    it("CLIENT KILL of the reader connections (and every command connection) mid-run: every client ends with the full sequence", async () => {
      const d = deployment as Deployment;
      await runThrough(d, "killed", async () => {
        expect(await killConnections(d.admin, `${d.prefix}:reader`)).toBe(2);
        expect(await killConnections(d.admin, `${d.prefix}:commands`)).toBe(3);
      });
      // Each process said what happened and what it does about it.
      for (const server of d.servers) {
        const report = await server.waitFor((m) => m.type === "source-error" && m.connection === "reader");
        expect(report).toMatchObject({ phase: "connection" });
        // A killed connection shows as a reset (error) or a plain close, whichever the socket sees first.
        expect(report.message).toMatch(
          /(lost the reader connection to Redis|reader connection to Redis failed).*reading on after/,
        );
      }
      const writerReport = await d.writer.waitFor((m) => m.type === "source-error");
      expect(writerReport.message).toMatch(
        /commands connection to Redis.*reconnecting; writes wait for it and are sent again/,
      );
    });
  });

  describe("a Redis restart", () => {
    let redis: RedisServerProcess | undefined;
    let deployment: Deployment | undefined;
    let dir: string | undefined;

    beforeAll(async () => {
      // A Redis of our own: the shared one must not be restarted under other users.
      dir = await mkdtemp(path.join(os.tmpdir(), "runcast-redis-"));
      redis = new RedisServerProcess(await freePort(), dir);
      await redis.start();
      deployment = await deploy(newPrefix("faults-restart"), 2, redis.url);
    }, 60_000);

    afterAll(async () => {
      await tearDown(deployment);
      await redis?.kill();
      if (dir !== undefined) await rm(dir, { recursive: true, force: true });
    }, 30_000);

    it("Redis killed and restarted mid-run (append-only file kept): every client ends with the full sequence", async () => {
      const d = deployment as Deployment;
      const server = redis as RedisServerProcess;
      await runThrough(d, "restarted", async () => {
        await server.kill();
        await server.start();
      });
      for (const fixture of d.servers) {
        const report = await fixture.waitFor((m) => m.type === "source-error" && m.connection === "reader");
        expect(report.phase).toBe("connection");
      }
    });
  });
});
