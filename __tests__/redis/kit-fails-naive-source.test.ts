import { AssertionError } from "node:assert";
import { conformanceTests } from "../../lib/testing/index";
import { NaiveRedisSource } from "./naive-source";
import { adminClient, deleteKeys, describeRedis, FaultyProxy, newPrefix, REDIS_URL } from "./support";

jest.setTimeout(30_000);

describeRedis("the conformance kit and a networked source", () => {
  it("fails a source whose write, sent again after its connection dropped, is recorded twice", async () => {
    const test = conformanceTests({
      name: "naive",
      capabilities: { network: true },
      timeoutMs: 5_000,
      create: async () => {
        const prefix = newPrefix("naive");
        const proxy = await FaultyProxy.start(REDIS_URL);
        const source = new NaiveRedisSource(proxy.urlFor(REDIS_URL), REDIS_URL, prefix);
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
    }).find((candidate) => candidate.name.startsWith("a write is recorded once"));
    expect(test?.skipReason).toBeUndefined();
    const error = await test?.run().then(
      () => undefined,
      (thrown: unknown) => thrown,
    );
    expect(error).toBeInstanceOf(AssertionError);
    expect((error as Error).message).toMatch(/recorded twice|written through dropped connections/);
  });
});
