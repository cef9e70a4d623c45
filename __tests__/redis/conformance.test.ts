import { RedisRunSource } from "../../lib/redis/index";
import { testRunEventSource } from "../../lib/testing/index";
import { adminClient, deleteKeys, describeRedis, FaultyProxy, newPrefix, REDIS_URL } from "./support";

jest.setTimeout(60_000);

describeRedis("RedisRunSource conformance", () => {
  testRunEventSource(
    { describe, it },
    {
      name: "RedisRunSource",
      // Through a proxy that can lose a write's reply after Redis ran it, as a dropped connection does.
      create: async () => {
        const prefix = newPrefix("conformance");
        const proxy = await FaultyProxy.start(REDIS_URL);
        const source = new RedisRunSource({ url: proxy.urlFor(REDIS_URL), prefix, historySize: 50, maxRunLogSize: 20 });
        return {
          source,
          writer: source,
          dropConnectionMidWrite: () => proxy.loseNextReply(),
          close: async () => {
            await source.close();
            await proxy.close();
            const admin = adminClient();
            await deleteKeys(admin, prefix);
            admin.disconnect();
          },
        };
      },
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
