import { execFile } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";
import { promisify } from "node:util";
import ts from "typescript";

const run = promisify(execFile);
const root = join(__dirname, "..", "..");
/** Inside the package, so that Node resolves `runcast` to the build through the package's own exports. */
const work = join(root, ".tmp", "readme");

jest.setTimeout(60_000);

/** How a README block is tested; see the README's Development section. */
type Marker = "run" | "no-run" | "fragment" | "skip";

interface Block {
  /** 1-based line of the opening fence. */
  line: number;
  lang: string;
  marker: Marker;
  code: string;
}

/** Languages the test knows: code it checks, and text it deliberately leaves alone. */
const CHECKED = new Set(["ts", "tsx", "js"]);
const UNCHECKED = new Set(["sh", "html", "nginx", ""]);
const MARKER = /^<!--\s*readme:\s*(no-run|fragment|skip)\s*-->$/;

/** Every fenced block of a Markdown text, with the marker on the line before its fence. */
function extractBlocks(markdown: string): Block[] {
  const lines = markdown.split("\n");
  const blocks: Block[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^(\s*)```(\S*)\s*$/.exec(lines[i] ?? "");
    if (open === null) continue;
    const indent = open[1] ?? "";
    const body: string[] = [];
    let j = i + 1;
    while (j < lines.length && !new RegExp(`^${indent}\`\`\`\\s*$`).test(lines[j] ?? "")) {
      body.push((lines[j] ?? "").slice(indent.length));
      j++;
    }
    let before = i - 1;
    while (before >= 0 && (lines[before] ?? "").trim() === "") before--;
    const marked = MARKER.exec((lines[before] ?? "").trim());
    blocks.push({ line: i + 1, lang: open[2] ?? "", marker: (marked?.[1] as Marker) ?? "run", code: body.join("\n") });
    i = j;
  }
  return blocks;
}

/**
 * `runcast` and each subpath of the exports map, mapped to the source entry its build comes
 * from (`./dist/<name>.d.mts` to `lib/<name>/index.ts`, `index` to `lib/index.ts`), so the
 * blocks are checked against the code as it is, and a new subpath is covered without edits here.
 */
function packagePaths(): Record<string, string[]> {
  const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { exports: Record<string, unknown> };
  const paths: Record<string, string[]> = {};
  for (const [subpath, target] of Object.entries(pkg.exports)) {
    const types = JSON.stringify(target).match(/\.\/dist\/([\w.-]+)\.d\.mts/)?.[1];
    if (types === undefined) continue;
    const source = types === "index" ? "lib/index.ts" : `lib/${types}/index.ts`;
    paths[subpath === "." ? "runcast" : `runcast/${subpath.slice(2)}`] = [join(root, source)];
  }
  return paths;
}

/** The file extension a block is checked under. */
function extensionOf(block: Block): string {
  return block.lang === "js" ? ".mjs" : `.${block.lang}`;
}

function fileOf(block: Block, ext: string): string {
  return join(work, `block-L${block.line}${ext}`);
}

/** The block as a module of its own (so blocks never share top-level names). */
function asModule(code: string): string {
  return /^\s*(import|export)\s/m.test(code) ? code : `${code}\nexport {};\n`;
}

const blocks = extractBlocks(readFileSync(join(root, "README.md"), "utf8"));
const code = blocks.filter((b) => CHECKED.has(b.lang));
const complete = code.filter((b) => b.marker === "run" || b.marker === "no-run");
const runnable = code.filter((b) => b.marker === "run");

beforeAll(() => {
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work, { recursive: true });
});
afterAll(() => {
  rmSync(work, { recursive: true, force: true });
});

describe("README.md code blocks", () => {
  it("are each of a kind the test knows, and most code blocks are complete programs", () => {
    const unknown = blocks.filter((b) => !CHECKED.has(b.lang) && !UNCHECKED.has(b.lang));
    expect(unknown.map((b) => `line ${b.line}: \`\`\`${b.lang}`)).toEqual([]);
    expect(runnable.length).toBeGreaterThanOrEqual(3);
  });

  it("type-check against the package (runcast and its subpaths mapped to lib/)", () => {
    const files = complete.map((block) => {
      const file = fileOf(block, extensionOf(block));
      writeFileSync(file, asModule(block.code));
      return file;
    });
    const program = ts.createProgram(files, {
      target: ts.ScriptTarget.ES2022,
      module: ts.ModuleKind.ESNext,
      moduleResolution: ts.ModuleResolutionKind.Bundler,
      lib: ["lib.es2022.d.ts", "lib.dom.d.ts"],
      types: ["node"],
      strict: true,
      esModuleInterop: true,
      skipLibCheck: true,
      allowJs: true,
      checkJs: true,
      jsx: ts.JsxEmit.ReactJSX,
      noEmit: true,
      paths: packagePaths(),
    });
    const problems = ts
      .getPreEmitDiagnostics(program)
      .filter((d) => d.file === undefined || files.includes(d.file.fileName))
      .map((d) => {
        const where =
          d.file === undefined
            ? ""
            : `${relative(root, d.file.fileName)}:${d.file.getLineAndCharacterOfPosition(d.start ?? 0).line + 1}: `;
        return `README ${where}${ts.flattenDiagnosticMessageText(d.messageText, "\n")}`;
      });
    expect(problems).toEqual([]);
  });

  it("that are fragments at least parse", () => {
    const problems = code
      .filter((b) => b.marker === "fragment")
      .flatMap((block) => {
        const out = ts.transpileModule(block.code, {
          reportDiagnostics: true,
          fileName: `block-L${block.line}${extensionOf(block)}`,
          compilerOptions: { target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.ESNext, jsx: ts.JsxEmit.ReactJSX },
        });
        return (out.diagnostics ?? []).map(
          (d) => `README line ${block.line}: ${ts.flattenDiagnosticMessageText(d.messageText, "\n")}`,
        );
      });
    expect(problems).toEqual([]);
  });

  it.each(runnable.map((b) => [b.line, b] as const))("run: the block at line %i", async (_line, block) => {
    if (!existsSync(join(root, "dist", "index.mjs"))) throw new Error("dist/ is missing: run `npm run build` first");
    const js = ts.transpileModule(block.code, {
      fileName: `block-L${block.line}${extensionOf(block)}`,
      compilerOptions: { target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.ESNext, jsx: ts.JsxEmit.ReactJSX },
    }).outputText;
    const file = fileOf(block, ".run.mjs");
    writeFileSync(file, js);
    const runner = fileOf(block, ".runner.mjs");
    // Servers the block starts listen on a free port of 127.0.0.1; once the block has run (and
    // one turn of the event loop has passed for errors it left behind), the process exits.
    writeFileSync(
      runner,
      `import net from "node:net";
const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...args) {
  const callback = args.find((arg) => typeof arg === "function");
  return callback === undefined ? listen.call(this, 0, "127.0.0.1") : listen.call(this, 0, "127.0.0.1", callback);
};
process.on("unhandledRejection", (error) => { console.error(error); process.exit(1); });
await import(${JSON.stringify(`./${relative(work, file)}`)});
await new Promise((resolve) => setImmediate(resolve));
console.log("block ran");
process.exit(0);
`,
    );
    const result = await run(process.execPath, [runner], { cwd: root, timeout: 30_000 }).catch(
      (error: { stdout?: string; stderr?: string; message: string }) => ({
        stdout: error.stdout ?? "",
        stderr: `${error.message}\n${error.stderr ?? ""}`,
      }),
    );
    expect({ stdout: result.stdout.trim().split("\n").pop(), stderr: result.stderr }).toEqual({
      stdout: "block ran",
      stderr: "",
    });
  });
});

/** GitHub's anchor of a heading: lower case, punctuation dropped, spaces as hyphens. */
function anchorOf(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/[^\w\- ]/g, "")
    .replace(/ /g, "-");
}

describe("README.md links", () => {
  it("to a section of its own (the contents, cross-references) each name a heading that exists", () => {
    const markdown = readFileSync(join(root, "README.md"), "utf8").replace(/```[\s\S]*?```/g, "");
    const anchors = new Set([...markdown.matchAll(/^#{1,6} (.+)$/gm)].map((m) => anchorOf(m[1] as string)));
    const links = [...markdown.matchAll(/\]\(#([^)]+)\)/g)].map((m) => m[1] as string);
    expect(links.length).toBeGreaterThan(20);
    expect(links.filter((link) => !anchors.has(link))).toEqual([]);
  });
});
