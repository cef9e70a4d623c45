import type { MaybePromise, RunEventSource } from "../source";

/**
 * The writer side the suite drives: the bundled sources' own writer API fits as is
 * (`{ source, writer: source }`); for another system, a thin adapter that makes the same
 * things happen there (start a job, log a line, report progress, finish it).
 */
export interface ConformanceWriter {
  /** Creates run `init.id`; its first envelope is a `state`. */
  createRun(init: { id: string }): unknown;
  /** Records an event of an active run. */
  recordEvent(runId: string, event: { type: string; seq: number }): unknown;
  /** Changes an active run's state (announced as a `state` envelope). */
  updateRun(runId: string, patch: { completed_units: number }): unknown;
  /** Ends a run; its `complete` envelope is the run's last. */
  completeRun(runId: string, final: { status: "completed" | "failed"; completed_units: number }): unknown;
}

/** One fresh source for one test, with its writer; the suite closes it after the test. */
export interface SourceFixture {
  source: RunEventSource;
  writer: ConformanceWriter;
  /**
   * For a source with a network (capability `network`): arms a fault that cuts the source's
   * connection while its next write is in flight, after the store has carried the write out
   * and before the answer arrives (e.g. a proxy that swallows the next reply and closes both
   * sides). The write must still be recorded exactly once.
   */
  dropConnectionMidWrite?(): MaybePromise<void>;
  /** Releases the source and whatever the fixture made (connections, keys). */
  close?(): MaybePromise<void>;
}

/**
 * What the source under test can do. A behaviour whose capability is not declared is
 * registered as a skipped test whose name says why, never left out silently.
 */
export interface SourceCapabilities {
  /** `snapshot()` returns states with a cursor read atomically with them. @default false */
  snapshot?: boolean;
  /** `replay(afterId, runId?)`. @default false */
  replay?: boolean;
  /** `readLog` over the global history (`runId` absent). @default false */
  readLog?: boolean;
  /** `readLog` over one run's log (`runId` set), from its start or after one of its ids. @default false */
  runLogs?: boolean;
  /** `getCompletion(runId)`. @default false */
  completion?: boolean;
  /**
   * The global history's size as configured in the fixture (envelopes of all runs), so the
   * suite can write past it and check that trimmed ids are reported as such.
   * @default undefined (trimming not tested)
   */
  historySize?: number;
  /**
   * The per-run log size as configured in the fixture (`maxRunLogSize`), so the suite can
   * check that a busy run's log is trimmed and a quiet run's is not pushed out.
   * @default undefined (per-run retention not tested)
   */
  maxRunLogSize?: number;
  /**
   * How many envelopes a store may keep beyond the configured sizes (approximate trimming,
   * such as Redis `MAXLEN ~`); the suite writes this many more before expecting a trim.
   * @default 0
   */
  trimSlack?: number;
  /** Writing to a finished run throws. @default false */
  rejectsWritesAfterComplete?: boolean;
  /**
   * Recorded events keep the fields written (the suite writes `{ type, seq }` and checks
   * `seq`). A source that derives events from another system's records may not.
   * @default true
   */
  eventFields?: boolean;
  /**
   * The source talks to its store over a network: the fixture's `dropConnectionMidWrite`
   * is required, and a write must be recorded once when its connection drops mid-write.
   * @default false
   */
  network?: boolean;
}

/** What {@link testRunEventSource} and {@link conformanceTests} take. */
export interface ConformanceOptions {
  /** A name for the source, used as the `describe` title. */
  name: string;
  /** Makes a fresh, empty source and its writer; called once per test. */
  create(): MaybePromise<SourceFixture>;
  /** What the source can do; everything else is skipped, visibly. */
  capabilities: SourceCapabilities;
  /**
   * How long one wait for an envelope may take, in ms. Give the test runner a test timeout
   * above it (jest: `jest.setTimeout`, vitest: `testTimeout`).
   * @default 10000
   */
  timeoutMs?: number;
}

/** One behaviour test of the suite. */
export interface ConformanceTest {
  /** The behaviour, as a sentence. */
  name: string;
  /** Why it does not apply to this source (a capability it lacks); absent when it runs. */
  skipReason?: string;
  /** Runs it: resolves when the source behaves, rejects with an `AssertionError` otherwise. */
  run(): Promise<void>;
}

/** A test registration function: jest's, vitest's and `node:test`'s `it` (or `test`) all fit. */
export type RegisterTest = (name: string, body: () => Promise<void>) => unknown;

/**
 * The test runner's `describe` and `it`, with `it.skip`: pass jest's globals, vitest's or
 * `node:test`'s exports.
 */
export interface TestRunner {
  describe(name: string, body: () => void): unknown;
  it: RegisterTest & { skip: RegisterTest };
}
