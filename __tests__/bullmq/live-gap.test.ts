import type { Envelope, LiveGap } from "../../lib/index";
import { adminClient, Collector, connectionsNamed, describeRedis, HeldJobs, newQueueName, within } from "./support";

jest.setTimeout(30_000);

describeRedis("BullMQRunSource's live reader", () => {
  it("reports a gap through onGap when the event stream was trimmed past it while its connection was down, then reads on", async () => {
    const held = new HeldJobs(newQueueName("gap"));
    const admin = adminClient();
    try {
      await held.ready();
      const delivered = new Collector<Envelope>();
      const gaps = new Collector<LiveGap>();
      const unsubscribe = held.source.subscribe(delivered.listener, gaps.listener);
      await held.queue.add("task", {}, { jobId: "before" });
      await delivered.until((items) => items.some((envelope) => envelope.runId === "before"));
      const [reader] = await connectionsNamed(admin, `runcast-bullmq:${held.name}:reader`);
      expect(reader).toEqual(expect.any(String));
      // At once: the stream loses everything the reader had read, and its connection drops.
      const events = `bull:${held.name}:events`;
      await admin
        .multi()
        .xtrim(events, "MAXLEN", 0)
        .xadd(events, "*", "event", "drained")
        .call("CLIENT", "KILL", "ID", reader as string)
        .exec();
      await gaps.until(1);
      expect(gaps.items[0]).toMatchObject({ reason: "trimmed" });
      expect(gaps.items[0]?.message).toContain(held.name);
      // It reads on from the stream as it is now.
      await held.queue.add("task", {}, { jobId: "after" });
      await within(
        delivered.until((items) => items.some((envelope) => envelope.runId === "after")),
        "a job added after the gap",
        10_000,
      );
      unsubscribe();
    } finally {
      admin.disconnect();
      await held.close();
    }
  });
});
