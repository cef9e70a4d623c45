import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { builtinModules } from "node:module";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const dist = join(__dirname, "..", "..", "dist");

function built(file: string): string {
  const path = join(dist, file);
  if (!existsSync(path)) throw new Error(`${path} is missing: run \`npm run build\` first`);
  return readFileSync(path, "utf8");
}

/** Module specifiers a built file loads: static and dynamic imports, re-exports, require calls. */
function specifiers(code: string): string[] {
  const found = new Set<string>();
  const patterns = [
    /\b(?:import|export)\s*(?:[\w$*{}\s,]*?\s*from\s*)?["']([^"']+)["']/g,
    /\bimport\s*\(\s*["']([^"']+)["']\s*\)/g,
    /\brequire\s*\(\s*["']([^"']+)["']\s*\)/g,
  ];
  for (const pattern of patterns) for (const match of code.matchAll(pattern)) found.add(match[1] as string);
  return [...found].sort();
}

const nodeOnly = (specifier: string) =>
  specifier.startsWith("node:") || builtinModules.includes(specifier.split("/")[0] as string);

describe("the runcast/client build", () => {
  it("dist/client.mjs and dist/client.cjs load zod's small build, nothing else: no Node built-ins, no Express", () => {
    for (const file of ["client.mjs", "client.cjs"]) {
      const loaded = specifiers(built(file));
      expect({ file, loaded }).toEqual({ file, loaded: ["zod/mini"] });
      expect(loaded.filter(nodeOnly)).toEqual([]);
    }
  });

  it("dist/client.browser.mjs is self-contained: it imports nothing at all", () => {
    const code = built("client.browser.mjs");
    expect(specifiers(code)).toEqual([]);
    expect(code).toMatch(/export\s*\{[^}]*\bwatchRun\b/);
  });

  it("the self-contained bundle runs the schemas: it loads and refuses to start without an EventSource", () => {
    // Loaded as an ES module by a plain Node process (Jest's module system cannot import it).
    const script = `
      const client = await import(${JSON.stringify(pathToFileURL(join(dist, "client.browser.mjs")).href)});
      try { client.watchRun("/api/runs/r/stream"); } catch (error) { console.log(typeof client.watchAll, error.message); }
    `;
    const output = execFileSync(process.execPath, ["--input-type=module", "-e", script], { encoding: "utf8" });
    expect(output).toMatch(/^function .*options\.EventSource/);
  });

  it("dist/schema.json holds JSON Schemas of RunState, RunEvent and Envelope", () => {
    const schema = JSON.parse(built("schema.json")) as { $schema: string; $defs: Record<string, unknown> };
    expect(schema.$schema).toBe("https://json-schema.org/draft/2020-12/schema");
    expect(Object.keys(schema.$defs).sort()).toEqual(["Envelope", "RunEvent", "RunState"]);
    expect(schema.$defs.RunState).toMatchObject({
      type: "object",
      required: ["id", "status", "completed_units"],
      properties: { status: { enum: ["pending", "running", "completed", "failed", "cancelled"] } },
    });
    expect(JSON.stringify(schema.$defs.Envelope)).toContain('"$ref":"#/$defs/RunEvent"');
  });
});
