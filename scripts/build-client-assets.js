// Build steps of runcast/client that follow the main tsup build (they read its output):
//  1. dist/client.browser.mjs: the client as one self-contained, minified ES module with zod
//     inlined, so a page can load it with <script type="module"> and no bundler. (The
//     dist/client.mjs entry keeps zod external, for bundlers that already ship it.)
//  2. dist/schema.json: JSON Schemas of RunState, RunEvent and Envelope, generated from the
//     zod schemas, for clients in other languages (`runcast/schema.json`).
const fs = require("node:fs");
const path = require("node:path");
const url = require("node:url");

const root = path.join(__dirname, "..");
const dist = path.join(root, "dist");

async function browserBundle() {
  const { build } = require("tsup");
  await build({
    config: false,
    entry: { "client.browser": path.join(root, "lib/client/index.ts") },
    outDir: dist,
    format: ["esm"],
    platform: "browser",
    target: "es2022",
    noExternal: ["zod"],
    minify: true,
    dts: false,
    clean: false,
    splitting: false,
    sourcemap: false,
    silent: true,
    outExtension: () => ({ js: ".mjs" }),
  });
  // Loading it runs every schema definition once: a broken bundle fails the build, not a page.
  const bundle = await import(url.pathToFileURL(path.join(dist, "client.browser.mjs")).href);
  if (typeof bundle.watchRun !== "function" || typeof bundle.watchAll !== "function") {
    throw new Error("dist/client.browser.mjs does not export watchRun and watchAll");
  }
}

function schemaJson() {
  const { z } = require("zod");
  const { RunStateSchema, RunEventSchema, EnvelopeSchema } = require(path.join(dist, "index.cjs"));
  const registry = z.registry();
  registry.add(RunStateSchema, {
    id: "RunState",
    description: "A run's state: the data of `state` and `complete` frames. Extra fields pass through.",
  });
  registry.add(RunEventSchema, {
    id: "RunEvent",
    description: "One thing that happened in a run: the data of `event` frames. Extra fields pass through.",
  });
  registry.add(EnvelopeSchema, {
    id: "Envelope",
    description:
      "What a source announces. Not expressible here: data.run_id (event) or data.id (state, complete) equals runId; " +
      "a state envelope has a non-terminal status and a complete envelope a terminal one.",
  });
  const { schemas } = z.toJSONSchema(registry, { target: "draft-2020-12", uri: (id) => `#/$defs/${id}` });
  const defs = {};
  for (const [id, schema] of Object.entries(schemas)) {
    // Each definition lives inside one document: no $schema or $id of its own.
    const { $schema: _schema, $id: _id, ...rest } = schema;
    defs[id] = rest;
  }
  const { version } = require(path.join(root, "package.json"));
  const document = {
    $schema: "https://json-schema.org/draft/2020-12/schema",
    title: `runcast ${version} data schemas`,
    description: "Reference a definition as schema.json#/$defs/RunState, #/$defs/RunEvent or #/$defs/Envelope.",
    $defs: defs,
  };
  fs.writeFileSync(path.join(dist, "schema.json"), `${JSON.stringify(document, null, 2)}\n`);
}

browserBundle()
  .then(schemaJson)
  .catch((error) => {
    console.error("runcast: building the client assets failed:", error);
    process.exitCode = 1;
  });
