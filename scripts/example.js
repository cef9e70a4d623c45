// `npm run example` (and `npm run example:bullmq`, which passes "bullmq"): builds the package
// when dist/ is missing or older than lib/ (the page loads dist/client.browser.mjs), then runs
// examples/main.ts (or examples/bullmq/main.ts) with ts-node.
const { spawnSync } = require("node:child_process");
const fs = require("node:fs");
const path = require("node:path");

const root = path.join(__dirname, "..");
const bundle = path.join(root, "dist", "client.browser.mjs");

/** The newest modification time of any file under lib/ (the browser bundle is built from lib/client/). */
function newestSource(dir = path.join(root, "lib")) {
  let newest = 0;
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const at = path.join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestSource(at) : fs.statSync(at).mtimeMs);
  }
  return newest;
}

if (!fs.existsSync(bundle) || fs.statSync(bundle).mtimeMs < newestSource()) {
  console.log("Building runcast first (npm run build)...");
  const built = spawnSync("npm", ["run", "--silent", "build"], {
    cwd: root,
    stdio: "inherit",
    shell: process.platform === "win32",
  });
  if (built.status !== 0) process.exit(built.status ?? 1);
}

require("ts-node").register({
  transpileOnly: true,
  compilerOptions: { module: "commonjs", moduleResolution: "node" },
});
require(path.join(root, "examples", ...(process.argv[2] === "bullmq" ? ["bullmq"] : []), "main.ts"));
