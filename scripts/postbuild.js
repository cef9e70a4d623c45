// tsup names the CommonJS declarations `.d.ts`; the exports map promises `.d.cts`.
const fs = require("node:fs");
const path = require("node:path");

const dist = path.join(__dirname, "..", "dist");
for (const file of fs.readdirSync(dist)) {
  if (file.endsWith(".d.ts")) fs.renameSync(path.join(dist, file), path.join(dist, file.replace(/\.d\.ts$/, ".d.cts")));
}

// runcast/client: the self-contained browser bundle and dist/schema.json.
require("./build-client-assets.js");
