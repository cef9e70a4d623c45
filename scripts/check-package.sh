#!/usr/bin/env bash
# Checks the package as users get it: publint and attw on the packed tarball, then the
# tarball installed into a fresh folder, loaded with require() and import, serving a stream.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

tarball=$(npm pack --silent --pack-destination "$work" 2>/dev/null | tail -n 1)
echo "packed $tarball ($(du -h "$work/$tarball" | cut -f1))"

npx --no-install publint run --strict "$work/$tarball"
# A dry-run publish (scripts skipped: this is already the test command) must raise no error.
if npm publish --dry-run --ignore-scripts 2>&1 | grep -E "npm (error|ERR)"; then exit 1; fi
npx --no-install attw "$work/$tarball"

mkdir "$work/app"
cd "$work/app"
npm init -y >/dev/null
npm install --silent --no-audit --no-fund --prefer-offline "$work/$tarball" express@5 ioredis@6 eventsource@4 react@19 >/dev/null 2>&1

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
import { EnvelopeSchema, MemoryRunSource, sseRouter } from "runcast";
if (typeof sseRouter !== "function" || typeof MemoryRunSource !== "function" || !EnvelopeSchema.safeParse) {
  throw new Error("the ESM build lacks its exports");
}
console.log("import: exports present");
JS
cat > entries.cjs <<'JS'
// The subpath entries, from CommonJS and ESM: runcast/redis (with ioredis), runcast/client, the JSON Schemas.
const { RedisRunSource } = require("runcast/redis");
const { watchRun, watchAll } = require("runcast/client");
const schemas = require("runcast/schema.json");
if (typeof RedisRunSource !== "function" || typeof watchRun !== "function" || typeof watchAll !== "function") {
  throw new Error("a subpath entry lacks its exports");
}
if (!JSON.stringify(schemas).includes("RunState")) throw new Error("schema.json lacks RunState");
const { useRun, useRuns } = require("runcast/react");
if (typeof useRun !== "function" || typeof useRuns !== "function") throw new Error("runcast/react lacks its hooks");
import("runcast/redis").then((esm) => {
  if (typeof esm.RedisRunSource !== "function") throw new Error("runcast/redis (ESM) lacks RedisRunSource");
  return import("runcast/client");
}).then((esm) => {
  if (typeof esm.watchRun !== "function") throw new Error("runcast/client (ESM) lacks watchRun");
  return import("runcast/react");
}).then((esm) => {
  if (typeof esm.useRun !== "function") throw new Error("runcast/react (ESM) lacks useRun");
  console.log("subpaths: runcast/redis, runcast/client, runcast/react and runcast/schema.json load");
});
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
import { type RunWatcher, watchRun, WatchError } from "runcast/client";
import schemas = require("runcast/schema.json");
const state: RunState = { id: "r", status: "running", completed_units: 1 };
const watcher: RunWatcher = watchRun(() => "/api/runs/r/stream", { onError: (e: WatchError) => e.code }, { from: "start" });
// @ts-expect-error: a status runcast does not know
const wrong: RunState = { id: "r", status: "done", completed_units: 1 };
export { MemoryRunSource, RedisRunSource, schemas, state, watcher, wrong };
TS
"$repo/node_modules/.bin/tsc" -p .
echo "types: every entry compiles under module commonjs, moduleResolution node10"

node smoke.cjs
node smoke.mjs
node entries.cjs
echo "package checks passed"
