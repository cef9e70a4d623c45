import type { Behaviour, SuiteContext } from "./behaviour";
import { completionBehaviours } from "./completion";
import { historyBehaviours } from "./history";
import { liveBehaviours } from "./live";
import { networkBehaviours } from "./network";
import { runLogBehaviours } from "./run-logs";
import { snapshotBehaviours } from "./snapshot";
import type { ConformanceOptions, ConformanceTest, SourceCapabilities, TestRunner } from "./types";

export type { Envelope, RunState } from "../schema";
export type { LogGap, LogPage, LogQuery, RunEventSource, RunSnapshot } from "../source";
export type {
  ConformanceOptions,
  ConformanceTest,
  ConformanceWriter,
  RegisterTest,
  SourceCapabilities,
  SourceFixture,
  TestRunner,
} from "./types";

/** Default time one wait for an envelope may take, in ms. */
export const DEFAULT_CONFORMANCE_TIMEOUT_MS = 10_000;

/** Every behaviour of the suite, in the order they are registered. */
const BEHAVIOURS: readonly Behaviour[] = [
  ...liveBehaviours,
  ...snapshotBehaviours,
  ...historyBehaviours,
  ...runLogBehaviours,
  ...completionBehaviours,
  ...networkBehaviours,
];

function declared(capabilities: SourceCapabilities, name: keyof SourceCapabilities): boolean {
  const value = capabilities[name];
  return typeof value === "number" ? value > 0 : value === true;
}

/**
 * The conformance suite as a list of tests, for runners this kit does not know: each has
 * its name, a `skipReason` when the source lacks a capability it needs, and `run()`, which
 * rejects with an `AssertionError` from `node:assert` when the source misbehaves.
 */
export function conformanceTests(options: ConformanceOptions): ConformanceTest[] {
  const context: SuiteContext = {
    create: () => options.create(),
    capabilities: options.capabilities,
    timeoutMs: options.timeoutMs ?? DEFAULT_CONFORMANCE_TIMEOUT_MS,
  };
  return BEHAVIOURS.map((behaviour) => {
    const missing = behaviour.needs.filter((name) => !declared(options.capabilities, name));
    return {
      name: behaviour.name,
      skipReason: missing.length === 0 ? undefined : `the source does not declare ${missing.join(", ")}`,
      run: () => behaviour.run(context),
    };
  });
}

/**
 * Registers the `RunEventSource` conformance suite with a test runner: one `describe` named
 * after the source, one test per behaviour, and for each behaviour the source lacks a
 * capability for, a skipped test whose name says which. Assertions use `node:assert` only,
 * so it runs under jest, vitest and `node:test` alike:
 *
 * ```ts
 * import { describe, it } from "node:test"; // or jest's / vitest's globals
 * import { testRunEventSource } from "runcast/testing";
 * testRunEventSource({ describe, it }, { name: "MySource", create, capabilities: { snapshot: true } });
 * ```
 */
export function testRunEventSource(runner: TestRunner, options: ConformanceOptions): void {
  runner.describe(`RunEventSource conformance: ${options.name}`, () => {
    for (const test of conformanceTests(options)) {
      if (test.skipReason === undefined) runner.it(test.name, test.run);
      else runner.it.skip(`${test.name} (skipped: ${test.skipReason})`, test.run);
    }
  });
}
