#!/usr/bin/env bash
# Checks the package as users get it: packed from a fresh copy of the tracked files (no dist/,
# as a clone or an install from git has it), every file of the exports map in the tarball,
# publint and attw on it, then the tarball installed into a fresh folder, loaded with
# require() and import, serving a stream.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# A clean clone: the tracked files as they are in the working tree, node_modules linked.
clone="$work/clone"
git ls-files -z | while IFS= read -r -d '' file; do
  if [ -e "$file" ]; then
    mkdir -p "$clone/$(dirname "$file")"
    cp "$file" "$clone/$file"
  fi
done
ln -s "$PWD/node_modules" "$clone/node_modules"
# Packing must build dist/ by itself (the prepare script).
tarball=$(cd "$clone" && npm pack --silent --pack-destination "$work" 2>/dev/null | tail -n 1)
echo "packed $tarball from a fresh copy ($(du -h "$work/$tarball" | cut -f1))"
missing=$(node -e '
  const targets = (e) => (typeof e === "string" ? [e] : Object.values(e ?? {}).flatMap(targets));
  const listed = new Set(require("node:fs").readFileSync(0, "utf8").split("\n"));
  const wanted = [...new Set(targets(require("./package.json").exports))].map((t) => `package/${t.slice(2)}`);
  console.log(wanted.filter((file) => !listed.has(file)).join(" "));
' < <(tar -tzf "$work/$tarball"))
if [ -n "$missing" ]; then echo "the tarball lacks files of the exports map: $missing"; exit 1; fi
echo "every file of the exports map is in the tarball"

npx --no-install publint run --strict "$work/$tarball"
# A dry-run publish (scripts skipped: this is already the test command) must raise no error.
if npm publish --dry-run --ignore-scripts 2>&1 | grep -E "npm (error|ERR)"; then exit 1; fi
# runcast/client/browser is a browser ES module on purpose (a page loads it as a file; a server
# only resolves its path), so attw's "a require call resolves to ESM" does not apply to it; its
# resolution from both module systems is checked below instead. Every other entry is checked
# with attw's default profile, classic CommonJS resolution (node10) included.
npx --no-install attw "$work/$tarball" --exclude-entrypoints ./client/browser

mkdir "$work/app"
cd "$work/app"
npm init -y >/dev/null
npm install --silent --no-audit --no-fund --prefer-offline "$work/$tarball" prom-client@15 express@5 ioredis@6 eventsource@4 react@19 >/dev/null 2>&1

cat > smoke.cjs <<'JS'
const http = require("node:http");
const express = require("express");
const { MemoryRunSource, sseRouter } = require("runcast");
const source = new MemoryRunSource();
source.createRun({ id: "run_1" });
const app = express();
const router = sseRouter(source);
app.use(router);
const server = app.listen(0, "127.0.0.1", () => {
  http.get(`http://127.0.0.1:${server.address().port}/api/runs/run_1/stream`, (res) => {
    res.setEncoding("utf8");
    let text = "";
    res.on("data", (chunk) => {
      text += chunk;
      if (text.includes('"id":"run_1"')) {
        console.log("require: first frame received");
        res.destroy();
        router.close().then(() => server.close());
      }
    });
  });
});
JS
cat > smoke.mjs <<'JS'
import { createStreamToken, EnvelopeSchema, MemoryRunSource, sseRouter } from "runcast";
if (typeof sseRouter !== "function" || typeof MemoryRunSource !== "function" || !EnvelopeSchema.safeParse) {
  throw new Error("the ESM build lacks its exports");
}
const token = await createStreamToken("s".repeat(32), { tags: ["team:web"], expiresIn: "5m" });
if (token.split(".").length !== 3) throw new Error("createStreamToken (ESM) made no JWT");
console.log("import: exports present, a stream token minted (jose from ESM)");
JS
cat > token.cjs <<'JS'
// jose is ESM-only: the CommonJS build carries it, so this works on every Node >= 20.
const { createStreamToken } = require("runcast");
createStreamToken("s".repeat(32), { runs: ["run_1"], expiresIn: 60 }).then((token) => {
  if (token.split(".").length !== 3) throw new Error("createStreamToken (CJS) made no JWT");
  console.log("require: a stream token minted (jose bundled into the CJS build)");
});
JS
cat > entries.cjs <<'JS'
// The subpath entries, from CommonJS and ESM: runcast/redis (with ioredis), runcast/client, the JSON Schemas.
const { RedisRunSource } = require("runcast/redis");
const { watchRun, watchAll } = require("runcast/client");
const schemas = require("runcast/schema.json");
// runcast/testing (node:assert only) and runcast/bullmq (ioredis at load; bullmq itself never imported).
const { testRunEventSource } = require("runcast/testing");
const { BullMQRunSource } = require("runcast/bullmq");
if (typeof testRunEventSource !== "function" || typeof BullMQRunSource !== "function") {
  throw new Error("runcast/testing or runcast/bullmq lacks its exports");
}
if (typeof RedisRunSource !== "function" || typeof watchRun !== "function" || typeof watchAll !== "function") {
  throw new Error("a subpath entry lacks its exports");
}
if (!JSON.stringify(schemas).includes("RunState")) throw new Error("schema.json lacks RunState");
const { useRun, useRuns } = require("runcast/react");
if (typeof useRun !== "function" || typeof useRuns !== "function") throw new Error("runcast/react lacks its hooks");
if (typeof require("runcast/prometheus").collectMetrics !== "function") throw new Error("runcast/prometheus lacks collectMetrics");
import("runcast/redis").then((esm) => {
  if (typeof esm.RedisRunSource !== "function") throw new Error("runcast/redis (ESM) lacks RedisRunSource");
  return import("runcast/client");
}).then((esm) => {
  if (typeof esm.watchRun !== "function") throw new Error("runcast/client (ESM) lacks watchRun");
  return import("runcast/react");
}).then((esm) => {
  if (typeof esm.useRun !== "function") throw new Error("runcast/react (ESM) lacks useRun");
  return Promise.all([import("runcast/testing"), import("runcast/bullmq"), import("runcast/prometheus")]);
}).then(([testing, bullmq, prometheus]) => {
  if (typeof testing.conformanceTests !== "function" || typeof bullmq.BullMQRunSource !== "function") {
    throw new Error("runcast/testing or runcast/bullmq (ESM) lacks its exports");
  }
  if (typeof prometheus.collectMetrics !== "function") throw new Error("runcast/prometheus (ESM) lacks collectMetrics");
  console.log("subpaths: runcast/redis, runcast/client, runcast/react, runcast/testing, runcast/bullmq, runcast/prometheus and runcast/schema.json load");
});
JS
cat > browser.mjs <<'JS'
// The README's way to serve the browser build: resolve runcast/client/browser to a file.
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
const fromEsm = fileURLToPath(import.meta.resolve("runcast/client/browser"));
const fromCjs = createRequire(import.meta.url).resolve("runcast/client/browser");
if (!fromEsm.endsWith("/dist/client.browser.mjs") || fromEsm !== fromCjs) {
  throw new Error(`runcast/client/browser resolves to ${fromEsm} (ESM) and ${fromCjs} (CommonJS)`);
}
const client = await import("runcast/client/browser");
if (typeof client.watchRun !== "function") throw new Error("runcast/client/browser lacks watchRun");
console.log("runcast/client/browser: resolves to dist/client.browser.mjs from ESM and CommonJS");
JS
# TypeScript's classic CommonJS resolution (node10, which ignores `exports`) finds every entry's types.
cat > tsconfig.json <<'JSON'
{
  "compilerOptions": {
    "module": "commonjs",
    "moduleResolution": "node10",
    "target": "es2022",
    "lib": ["es2022", "dom"],
    "strict": true,
    "noEmit": true,
    "skipLibCheck": true,
    "resolveJsonModule": true,
    "esModuleInterop": true,
    "types": []
  },
  "files": ["types.ts"]
}
JSON
cat > types.ts <<'TS'
import { MemoryRunSource, type RunState } from "runcast";
import { RedisRunSource } from "runcast/redis";
import { collectMetrics } from "runcast/prometheus";
import { type RunWatcher, watchRun, WatchError } from "runcast/client";
import type { useRun } from "runcast/react";
import type { BullMQRunSource } from "runcast/bullmq";
import type * as testing from "runcast/testing";
import schemas = require("runcast/schema.json");
const state: RunState = { id: "r", status: "running", completed_units: 1 };
const watcher: RunWatcher = watchRun(() => "/api/runs/r/stream", { onError: (e: WatchError) => e.code }, { from: "start" });
// @ts-expect-error: a status runcast does not know
const wrong: RunState = { id: "r", status: "done", completed_units: 1 };
type RunHook = typeof useRun;
type Entries = [RunHook, BullMQRunSource, typeof testing];
export { collectMetrics, MemoryRunSource, RedisRunSource, schemas, state, watcher, wrong, type Entries };
TS
"$repo/node_modules/.bin/tsc" -p .
echo "types: every entry compiles under module commonjs, moduleResolution node10"

node smoke.cjs
node smoke.mjs
node token.cjs
# As on Node 20.0-20.18, where require() cannot load an ES module such as jose.
node --no-experimental-require-module token.cjs
node entries.cjs
node browser.mjs

# Typed custom fields against the built declarations, under TypeScript's classic CommonJS
# resolution and exactOptionalPropertyTypes. Each @ts-expect-error must meet an error.
mkdir typed-fields
cat > typed-fields/tsconfig.json <<'JSON'
{
  "compilerOptions": {
    "module": "commonjs",
    "moduleResolution": "node10",
    "target": "es2022",
    "lib": ["es2022", "dom"],
    "strict": true,
    "exactOptionalPropertyTypes": true,
    "noEmit": true,
    "skipLibCheck": true,
    "esModuleInterop": true,
    "types": []
  },
  "files": ["daemon.ts"]
}
JSON
cat > typed-fields/daemon.ts <<'TS'
import { MemoryRunSource, type RunState, type SseRouter, sseRouter } from "runcast";
import { RedisRunSource } from "runcast/redis";
interface DeployState extends RunState { units: string[] }
async function onRedis(): Promise<string[]> {
  const redis = new RedisRunSource<DeployState>({ prefix: undefined });
  // @ts-expect-error: total_unit is not a field (total_units is)
  await redis.completeRun("r", { status: "completed", total_unit: 1 });
  return (await redis.createRun({ id: "r2", units: [] })).units;
}
const source = new MemoryRunSource<DeployState>({ historySize: undefined });
const created: DeployState = source.createRun({ id: "r", units: ["api"] });
// @ts-expect-error: complete_units is not a field (completed_units is)
source.updateRun("r", { complete_units: 1 });
const units: string[] | undefined = source.getRun("r")?.units;
const router: SseRouter<DeployState> = sseRouter(source, { heartbeatMs: undefined });
// @ts-expect-error: with the built-in types an extra field is unknown
const loose: string[] | undefined = new MemoryRunSource().getRun("r")?.units;
export { created, loose, onRedis, router, units };
TS
"$repo/node_modules/.bin/tsc" -p typed-fields
echo "types: typed custom fields compile under module commonjs, moduleResolution node10, exactOptionalPropertyTypes"
echo "package checks passed"
