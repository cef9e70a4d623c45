import { defineConfig, type Options } from "tsup";

const common: Options = {
  entry: {
    index: "lib/index.ts",
    client: "lib/client/index.ts",
    redis: "lib/redis/index.ts",
    react: "lib/react/index.ts",
    testing: "lib/testing/index.ts",
    bullmq: "lib/bullmq/index.ts",
    prometheus: "lib/prometheus/index.ts",
  },
  dts: true,
  sourcemap: false,
  target: "node20",
  splitting: false,
  outExtension: ({ format }) => (format === "cjs" ? { js: ".cjs", dts: ".d.cts" } : { js: ".mjs", dts: ".d.mts" }),
  // runcast/react imports runcast/client by name, so both share one copy of the client.
  external: ["express", "ioredis", "better-sse", "zod", "react", "runcast/client", "bullmq", "prom-client"],
};

// jose ships ES modules only. The ESM build imports it; the CommonJS build carries the part of
// it runcast uses, so `require("runcast")` works on every Node >= 20, not only where Node can
// require() an ES module (20.19+).
export default defineConfig([
  { ...common, format: ["esm"], clean: true },
  { ...common, format: ["cjs"], noExternal: ["jose"] },
]);
