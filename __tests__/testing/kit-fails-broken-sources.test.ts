import { AssertionError } from "node:assert";
import { MemoryRunSource } from "../../lib/index";
import { conformanceTests, type SourceCapabilities, type SourceFixture } from "../../lib/testing/index";
import {
  DeliversTwice,
  EventsAfterComplete,
  LiveReaderFromNewest,
  ReplaysUnknownIdsFromStart,
  RunLogsInSharedHistory,
  SnapshotWithoutAtomicCursor,
  StringOrderedIds,
} from "./broken-sources";

jest.setTimeout(30_000);

const CAPABILITIES: SourceCapabilities = {
  snapshot: true,
  replay: true,
  completion: true,
  historySize: 50,
  rejectsWritesAfterComplete: true,
};

/** Runs the kit's test named `name` (by its start) on `create`'s sources and returns what it threw. */
async function outcome(
  create: () => SourceFixture,
  name: string,
  capabilities: SourceCapabilities = CAPABILITIES,
): Promise<unknown> {
  const test = conformanceTests({ name: "broken", create, capabilities, timeoutMs: 1_000 }).find((candidate) =>
    candidate.name.startsWith(name),
  );
  if (test === undefined) throw new Error(`no kit test starts with "${name}"`);
  expect(test.skipReason).toBeUndefined();
  try {
    await test.run();
    return undefined;
  } catch (error) {
    return error;
  }
}

/** Each trap, the kit test that must catch it, and the capabilities declared. */
const TRAPS: [trap: string, create: () => SourceFixture, test: string, capabilities: SourceCapabilities][] = [
  [
    "a snapshot whose cursor is read after its state",
    () => new SnapshotWithoutAtomicCursor().fixture(),
    "a snapshot and its cursor are read atomically",

    CAPABILITIES,
  ],
  [
    "a live reader that starts from the newest entry when its first read arrives",
    () => new LiveReaderFromNewest().fixture(),
    "a subscriber receives what is written right after subscribe returns",

    CAPABILITIES,
  ],
  [
    "ids that are not ordered as compareIds says",
    () => new StringOrderedIds().fixture(),
    "envelope ids are strictly ordered",
    CAPABILITIES,
  ],
  [
    "a subscriber that gets envelopes twice",
    () => new DeliversTwice().fixture(),
    "subscribe delivers every envelope once",
    CAPABILITIES,
  ],
  [
    "replay that serves an unknown id from the start instead of answering null",
    () => new ReplaysUnknownIdsFromStart().fixture(),
    "replay answers null for an id it does not know",

    CAPABILITIES,
  ],
  [
    "events announced after a run's complete",
    () => new EventsAfterComplete().fixture(),
    "complete is a run's last envelope",
    { ...CAPABILITIES, rejectsWritesAfterComplete: false },
  ],
  [
    "run logs kept in the shared history, where a busy run pushes a quiet one out",
    () => new RunLogsInSharedHistory(60).fixture(),
    "a busy run does not push a quiet run's log out",
    { runLogs: true, maxRunLogSize: 20 },
  ],
];

describe("the conformance kit fails a source with a known trap", () => {
  it.each(TRAPS)("%s", async (_trap, create, test, capabilities) => {
    const error = await outcome(create, test, capabilities);
    expect(error).toBeInstanceOf(AssertionError);
  });
});

describe("the same kit tests pass on MemoryRunSource", () => {
  it.each(TRAPS.filter(([, , , capabilities]) => capabilities.runLogs !== true))(
    "%s",
    async (_trap, _create, test, _capabilities) => {
      const create = (): SourceFixture => {
        const source = new MemoryRunSource({ historySize: 50 });
        return { source, writer: source };
      };
      expect(await outcome(create, test)).toBeUndefined();
    },
  );
});

describe("a capability the source does not declare", () => {
  it("is skipped with the reason in the test's name, never left out", () => {
    const tests = conformanceTests({ name: "bare", create: () => new DeliversTwice().fixture(), capabilities: {} });
    const skipped = tests.filter((test) => test.skipReason !== undefined);
    expect(skipped.map((test) => test.skipReason)).toContain("the source does not declare snapshot");
    expect(skipped.map((test) => test.skipReason)).toContain("the source does not declare network");
    expect(tests.filter((test) => test.skipReason === undefined).length).toBeGreaterThanOrEqual(4);
  });
});
