import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { createDashboard } from "../../examples/bullmq/dashboard";
import { Producer, SERVICES } from "../../examples/bullmq/producer";
import { startWorker } from "../../examples/bullmq/worker";
import { BullMQRunSource } from "../../lib/bullmq/index";
import { SseStream } from "../helpers/sse";
import { connectionOptions, deleteQueueKeys, describeRedis, newQueueName } from "./support";

jest.setTimeout(60_000);

describeRedis("the BullMQ example", () => {
  it("serves a deploy started from the page's API, to a stream token: its services as units, their logs, then complete", async () => {
    const queue = newQueueName("example");
    const connection = connectionOptions();
    const producer = new Producer(queue, connection);
    const source = new BullMQRunSource({ queue, connection });
    const dashboard = createDashboard(source, producer);
    const server = await new Promise<Server>((resolve) => {
      const s = dashboard.app.listen(0, "127.0.0.1", () => resolve(s));
    });
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const worker = startWorker(queue, connection);
    let stream: SseStream | undefined;
    try {
      await source.ready();
      const response = await fetch(`${url}/api/runs`, { method: "POST" });
      expect(response.status).toBe(201);
      const { run } = (await response.json()) as { run: { id: string } };
      // The page's way in: a fresh token from POST /api/stream-token; without one the stream is refused.
      expect((await fetch(`${url}/api/runs/${run.id}/stream?from=start`)).status).toBe(401);
      const { token } = (await (await fetch(`${url}/api/stream-token`, { method: "POST" })).json()) as {
        token: string;
      };
      stream = await SseStream.open(`${url}/api/runs/${run.id}/stream?from=start&token=${encodeURIComponent(token)}`);
      await stream.end(30_000);
      const events = stream.of("event").map((frame) => frame.json as { type: string; unit?: string });
      const completed = events.filter((event) => event.type === "unit.completed").map((event) => event.unit);
      expect(completed.sort()).toEqual(SERVICES.map((service) => `${run.id}.${service}`).sort());
      expect(events.some((event) => event.type === "job.log")).toBe(true);
      expect(stream.of("complete")[0]?.json).toMatchObject({ status: "completed", completed_units: SERVICES.length });
      const listed = (await (await fetch(`${url}/api/runs`)).json()) as { runs: { id: string }[] };
      expect(listed.runs.map((listedRun) => listedRun.id)).toContain(run.id);
    } finally {
      stream?.close();
      await dashboard.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await worker.close();
      await producer.close();
      await source.close();
      await deleteQueueKeys(queue);
    }
  });
});
