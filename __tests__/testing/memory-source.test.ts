import { MemoryRunSource } from "../../lib/index";
import { testRunEventSource } from "../../lib/testing/index";

jest.setTimeout(30_000);

/** The conformance suite on the embedded source, with small sizes so trimming is reached quickly. */
testRunEventSource(
  { describe, it },
  {
    name: "MemoryRunSource",
    create: () => {
      const source = new MemoryRunSource({ historySize: 50, maxRunLogSize: 20 });
      return { source, writer: source };
    },
    capabilities: {
      snapshot: true,
      replay: true,
      completion: true,
      readLog: true,
      runLogs: true,
      historySize: 50,
      maxRunLogSize: 20,
      rejectsWritesAfterComplete: true,
    },
  },
);
