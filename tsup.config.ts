import { defineConfig } from "tsup";

export default defineConfig({
  entry: { index: "lib/index.ts", client: "lib/client/index.ts", redis: "lib/redis/index.ts" },
  format: ["cjs", "esm"],
  dts: true,
  sourcemap: false,
  clean: true,
  target: "node20",
  splitting: false,
  outExtension: ({ format }) => (format === "cjs" ? { js: ".cjs", dts: ".d.cts" } : { js: ".mjs", dts: ".d.mts" }),
  external: ["express", "ioredis", "better-sse", "zod"],
});
