// The browser build of runcast/client, dist/client.browser.mjs, must stay small: this prints
// its size gzipped and fails above the budget. Run by the test command after the build.
const fs = require("node:fs");
const path = require("node:path");
const zlib = require("node:zlib");

/** The budget, in bytes gzipped (12 kB, validation included). */
const BUDGET_BYTES = 12_000;

const file = path.join(__dirname, "..", "dist", "client.browser.mjs");
if (!fs.existsSync(file)) {
  console.error(`${file} is missing: run \`npm run build\` first`);
  process.exit(1);
}
const raw = fs.readFileSync(file);
const gzipped = zlib.gzipSync(raw, { level: 9 }).length;
const kB = (bytes) => `${(bytes / 1000).toFixed(1)} kB`;
console.log(
  `dist/client.browser.mjs: ${kB(raw.length)}, ${kB(gzipped)} gzipped (${gzipped} bytes; budget ${BUDGET_BYTES})`,
);
if (gzipped > BUDGET_BYTES) {
  console.error(`runcast/client's browser build is over its budget of ${kB(BUDGET_BYTES)} gzipped`);
  process.exit(1);
}
