import { execFile } from "node:child_process";
import path from "node:path";

jest.setTimeout(60_000);

describe("the conformance suite outside jest", () => {
  it("runs under node:test with its describe and it: the declared behaviours pass, the others are reported skipped", async () => {
    const file = path.join(__dirname, "fixtures", "node-test-runner.ts");
    const output = await new Promise<string>((resolve, reject) => {
      execFile(
        process.execPath,
        ["-r", "ts-node/register/transpile-only", "--test", "--test-reporter=tap", file],
        {
          env: { ...process.env, TS_NODE_COMPILER_OPTIONS: '{"module":"commonjs","moduleResolution":"node"}' },
          timeout: 50_000,
        },
        (error, stdout, stderr) =>
          error === null ? resolve(stdout) : reject(new Error(`${error.message}\n${stdout}\n${stderr}`)),
      );
    });
    expect(output).toMatch(/^# fail 0$/m);
    expect(output).toMatch(/^# pass 9$/m);
    expect(output).toMatch(/^# skipped 9$/m);
    expect(output).toContain("ok 3 - a subscriber receives what is written right after subscribe returns");
    expect(output).toMatch(/# SKIP\b/);
    expect(output).toContain("skipped: the source does not declare readLog");
  });
});
