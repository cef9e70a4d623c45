// tsup names the CommonJS declarations `.d.ts`; the exports map promises `.d.cts`.
const fs = require("node:fs");
const path = require("node:path");

const dist = path.join(__dirname, "..", "dist");
for (const file of fs.readdirSync(dist)) {
  if (file.endsWith(".d.ts")) fs.renameSync(path.join(dist, file), path.join(dist, file.replace(/\.d\.ts$/, ".d.cts")));
}

// With several entries tsup puts shared declarations in a chunk (`schema-<hash>.d.ts`) that
// the CommonJS declarations import as `./schema-<hash>.js` (with `from`, or bare for a chunk
// imported only for its types' dependencies); after the renaming above they must say `.cjs`
// (TypeScript maps it to `.d.cts`), or node16 resolution fails.
for (const file of fs.readdirSync(dist)) {
  if (!file.endsWith(".d.cts")) continue;
  const target = path.join(dist, file);
  const text = fs.readFileSync(target, "utf8");
  const fixed = text.replace(/((?:from|import)\s+["']\.\/[^"']+)\.js(["'])/g, "$1.cjs$2");
  if (fixed !== text) fs.writeFileSync(target, fixed);
}

// runcast/client: the self-contained browser bundle and dist/schema.json.
require("./build-client-assets.js");
