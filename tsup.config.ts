import { defineConfig } from "tsup";

export default defineConfig({
  entry: {
    index: "lib/index.ts",
    client: "lib/client/index.ts",
    redis: "lib/redis/index.ts",
    react: "lib/react/index.ts",
    testing: "lib/testing/index.ts",
    bullmq: "lib/bullmq/index.ts",
  },
  format: ["cjs", "esm"],
  dts: true,
  sourcemap: false,
  clean: true,
  target: "node20",
  splitting: false,
  outExtension: ({ format }) => (format === "cjs" ? { js: ".cjs", dts: ".d.cts" } : { js: ".mjs", dts: ".d.mts" }),
  // runcast/react imports runcast/client by name, so both share one copy of the client.
  external: ["express", "ioredis", "better-sse", "zod", "react", "runcast/client", "bullmq"],
});
