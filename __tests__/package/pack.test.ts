import { execFile } from "node:child_process";
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);
const root = join(__dirname, "..", "..");

jest.setTimeout(180_000);

/**
 * A fresh clone has no dist/ (it is git-ignored): packing it, as `npm pack`, `npm publish` and
 * an install from git do, must build it first.
 */
describe("packing a fresh clone", () => {
  let work: string;

  beforeAll(() => {
    work = mkdtempSync(join(tmpdir(), "runcast-pack-"));
  });
  afterAll(() => {
    rmSync(work, { recursive: true, force: true });
  });

  it("builds dist/ and puts every entry of the exports map in the tarball", async () => {
    // The tracked files as they are in the working tree: a clone, without dist/ or node_modules/.
    const clone = join(work, "clone");
    const { stdout } = await run("git", ["ls-files", "-z", "--cached", "--exclude-standard"], { cwd: root });
    for (const file of stdout.split("\0").filter((f) => f !== "")) {
      mkdirSync(dirname(join(clone, file)), { recursive: true });
      try {
        copyFileSync(join(root, file), join(clone, file));
      } catch {
        // Deleted in the working tree but not yet in the index: not part of the clone.
      }
    }
    symlinkSync(join(root, "node_modules"), join(clone, "node_modules"), "dir");

    const packed = await run("npm", ["pack", "--pack-destination", work], { cwd: clone, maxBuffer: 16 * 1024 * 1024 });
    const tarball = packed.stdout.trim().split("\n").pop() ?? "";
    const listing = await run("tar", ["-tzf", join(work, tarball)]);
    const files = new Set(listing.stdout.split("\n").filter((f) => f !== ""));

    const pkg = require(join(root, "package.json")) as { exports: Record<string, unknown> };
    const expected = [...new Set(targetsOf(pkg.exports))].map((target) => `package/${target.slice(2)}`);
    expect(expected).toContain("package/dist/index.cjs");
    for (const file of expected) expect(files).toContain(file);
  });
});

/** Every file an exports map points to (its leaf strings). */
function targetsOf(exports: unknown): string[] {
  if (typeof exports === "string") return [exports];
  if (typeof exports !== "object" || exports === null) return [];
  return Object.values(exports).flatMap(targetsOf);
}
