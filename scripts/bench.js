#!/usr/bin/env node
// `npm run bench`: runs the TypeScript fan-out benchmark (bench/run.ts) through ts-node,
// compiled to CommonJS and without type checking; its child processes inherit the settings.
process.env.TS_NODE_TRANSPILE_ONLY = "true";
process.env.TS_NODE_COMPILER_OPTIONS = JSON.stringify({ module: "commonjs", moduleResolution: "node" });
require("ts-node/register/transpile-only");
require("../bench/run.ts");
