import { RedisRunSource } from "../../lib/redis/index";
import { testRunEventSource } from "../../lib/testing/index";
import { behindFaultyProxy, describeRedis } from "./support";

jest.setTimeout(60_000);

describeRedis("RedisRunSource conformance", () => {
  testRunEventSource(
    { describe, it },
    {
      name: "RedisRunSource",
      // Through a proxy that can lose a write's reply after Redis ran it, as a dropped connection does.
      create: () =>
        behindFaultyProxy(
          "conformance",
          (url, prefix) => new RedisRunSource({ url, prefix, historySize: 50, maxRunLogSize: 20 }),
        ),
      capabilities: {
        snapshot: true,
        replay: true,
        completion: true,
        readLog: true,
        runLogs: true,
        historySize: 50,
        maxRunLogSize: 20,
        // XADD MAXLEN ~ trims whole stream nodes (100 entries by default), so a few hundred more may stay.
        trimSlack: 250,
        rejectsWritesAfterComplete: true,
        network: true,
      },
    },
  );
});
