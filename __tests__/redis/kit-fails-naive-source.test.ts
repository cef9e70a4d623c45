import { AssertionError } from "node:assert";
import { conformanceTests } from "../../lib/testing/index";
import { NaiveRedisSource } from "./naive-source";
import { behindFaultyProxy, describeRedis, REDIS_URL } from "./support";

jest.setTimeout(30_000);

describeRedis("the conformance kit and a networked source", () => {
  it("fails a source whose write, sent again after its connection dropped, is recorded twice", async () => {
    const test = conformanceTests({
      name: "naive",
      capabilities: { network: true },
      timeoutMs: 5_000,
      create: () => behindFaultyProxy("naive", (url, prefix) => new NaiveRedisSource(url, REDIS_URL, prefix)),
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
