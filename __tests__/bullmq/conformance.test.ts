import { testRunEventSource } from "../../lib/testing/index";
import { describeRedis, HeldJobs, newQueueName } from "./support";

jest.setTimeout(60_000);

describeRedis("BullMQRunSource conformance", () => {
  testRunEventSource(
    { describe, it },
    {
      name: "BullMQRunSource",
      create: async () => {
        const jobs = new HeldJobs(newQueueName("conformance"));
        await jobs.ready();
        return { source: jobs.source, writer: jobs.writer(), close: () => jobs.close() };
      },
      capabilities: {
        snapshot: true,
        replay: true,
        readLog: true,
        runLogs: true,
        completion: true,
        // Events are job.log lines: `{ type: "job.log", message }`, not the fields written.
        eventFields: false,
      },
    },
  );
});
