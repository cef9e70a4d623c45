import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Row, Trial } from "../../bench/report";

interface BenchResult {
  smoke: boolean;
  rows: Row[];
  trials: Trial[];
}

/** Runs `npm run bench` in smoke mode (a few clients, short phases) and reads the JSON it writes. */
function runSmoke(out: string): Promise<{ result: BenchResult; stdout: string }> {
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      [join(__dirname, "../../scripts/bench.js")],
      { env: { ...process.env, BENCH_SMOKE: "1", BENCH_OUT: out }, timeout: 180_000 },
      (error, stdout, stderr) => {
        if (error !== null) reject(new Error(`${error.message}\n${stderr}`));
        else resolve({ result: JSON.parse(readFileSync(out, "utf8")) as BenchResult, stdout });
      },
    );
  });
}

describe("the fan-out benchmark in smoke mode", () => {
  const dir = mkdtempSync(join(tmpdir(), "runcast-bench-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("runs all three servers, every client gets every event, and it reports every figure", async () => {
    const { result, stdout } = await runSmoke(join(dir, "smoke.json"));
    expect(result.smoke).toBe(true);
    expect(result.trials.map((t) => t.server).sort()).toEqual(["better-sse", "handwritten", "runcast"]);
    for (const trial of result.trials) {
      expect(trial.connectFailures).toBe(0);
      expect(trial.allDelivered).toBe(true);
      expect(trial.cutOffs).toBe(0);
      expect(trial.latency.complete).toBe(true);
      expect(trial.latency.samples).toBeGreaterThan(0);
      expect(trial.saturation.map((s) => s.k)).toEqual([1, 10]);
      for (const shape of trial.saturation) {
        expect(shape.complete).toBe(true);
        expect(shape.broadcasts).toBeGreaterThan(0);
        expect(shape.eventsPerSec).toBeGreaterThan(0);
      }
      for (const figure of [trial.acceptMs, trial.latency.p50, trial.latency.p99]) {
        expect(Number.isFinite(figure)).toBe(true);
      }
    }
    // Ratios are computed against the hand-written server of the same rep.
    const runcast = result.rows.find((row) => row.server === "runcast");
    expect(Number.isFinite(runcast?.figures.k10.vsHandwritten)).toBe(true);
    expect(Number.isFinite(runcast?.figures.k10.vsBetterSse)).toBe(true);
    expect(result.rows.find((row) => row.server === "handwritten")?.figures.k1.vsHandwritten).toBe(1);
    // The table is printed.
    expect(stdout).toContain("| clients | server |");
    expect(stdout).toMatch(/\| 4 \| runcast \|/);
  }, 200_000);
});
