import path from "node:path";

/** The built bundles, as users load them (the test command builds before jest runs). */
const dist = path.join(__dirname, "..", "..", "dist");

describe("RuncastError", () => {
  it("is recognised by instanceof across the runcast and runcast/redis bundles", () => {
    const main = require(path.join(dist, "index.cjs")) as typeof import("../../lib/index");
    const redis = require(path.join(dist, "redis.cjs")) as typeof import("../../lib/redis");
    expect(main.RuncastError).not.toBe(redis.RuncastError);
    const fromRedis = new redis.RuncastError("run_exists", "run r already exists");
    expect(fromRedis).toBeInstanceOf(main.RuncastError);
    expect(new main.RuncastError("run_finished", "done")).toBeInstanceOf(redis.RuncastError);
    expect(new Error("plain")).not.toBeInstanceOf(main.RuncastError);
    let caught: unknown;
    try {
      new main.MemoryRunSource().recordEvent("ghost", { type: "unit.started" });
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(redis.RuncastError);
    expect((caught as InstanceType<typeof main.RuncastError>).code).toBe("run_not_found");
  });
});
