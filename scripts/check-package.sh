#!/usr/bin/env bash
# Checks the package as users get it: publint and attw on the packed tarball, then the
# tarball installed into a fresh folder, loaded with require() and import, serving a stream.
set -euo pipefail
cd "$(dirname "$0")/.."

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

tarball=$(npm pack --silent --pack-destination "$work" 2>/dev/null | tail -n 1)
echo "packed $tarball ($(du -h "$work/$tarball" | cut -f1))"

npx --no-install publint run --strict "$work/$tarball"
npx --no-install attw "$work/$tarball" --profile node16

mkdir "$work/app"
cd "$work/app"
npm init -y >/dev/null
npm install --silent --no-audit --no-fund --prefer-offline "$work/$tarball" express@5 >/dev/null 2>&1

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
node smoke.cjs
node smoke.mjs
echo "package checks passed"
