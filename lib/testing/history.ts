import assert from "node:assert/strict";
import type { Envelope } from "../schema";
import type { Behaviour, SuiteContext } from "./behaviour";
import {
  idOf,
  newRunId,
  otherSpellings,
  plain,
  Recorder,
  readWholeLog,
  replayAll,
  withFixture,
  writeEvents,
} from "./harness";
import type { SourceFixture } from "./types";

/** Two runs written interleaved and finished; everything subscribe delivered, in order. */
async function twoRuns(fixture: SourceFixture, timeoutMs: number): Promise<{ log: Envelope[]; runs: string[] }> {
  const recorder = new Recorder(fixture.source, timeoutMs);
  const runs = [newRunId("history-a"), newRunId("history-b")];
  const [a, b] = runs as [string, string];
  await fixture.writer.createRun({ id: a });
  await fixture.writer.createRun({ id: b });
  for (let seq = 0; seq < 6; seq++) {
    await fixture.writer.recordEvent(a, { type: "conformance.step", seq });
    await fixture.writer.recordEvent(b, { type: "conformance.step", seq });
  }
  await fixture.writer.updateRun(a, { completed_units: 6 });
  await fixture.writer.completeRun(a, { status: "completed", completed_units: 6 });
  await fixture.writer.completeRun(b, { status: "failed", completed_units: 6 });
  await recorder.completed(a);
  await recorder.completed(b);
  recorder.unsubscribe();
  return { log: recorder.envelopes, runs };
}

/** Ids a source must not take for a position in its history: other spellings, made up, another source's. */
async function foreignIds(context: SuiteContext, own: string): Promise<string[]> {
  const ids = [...otherSpellings(own), "not-an-id", "", "../../etc", "9".repeat(40), "-1"];
  await withFixture(context.create, async (other) => {
    const recorder = new Recorder(other.source, context.timeoutMs);
    const run = newRunId("foreign");
    await other.writer.createRun({ id: run });
    await writeEvents(other, run, 0, 2);
    await other.writer.completeRun(run, { status: "completed", completed_units: 2 });
    await recorder.completed(run);
    recorder.unsubscribe();
    // The other source's newest ids: never positions in the first source's history.
    for (const envelope of recorder.envelopes.slice(-2)) ids.push(idOf(envelope, "another source's envelope"));
  });
  return ids;
}

/** Writes past the history's size; returns the first envelope, which must then be trimmed. */
async function pastHistory(context: SuiteContext, fixture: SourceFixture): Promise<Envelope> {
  const size = context.capabilities.historySize ?? 0;
  const recorder = new Recorder(fixture.source, context.timeoutMs);
  const run = newRunId("trim");
  await fixture.writer.createRun({ id: run });
  await writeEvents(fixture, run, 0, size + (context.capabilities.trimSlack ?? 0) + 5);
  await fixture.writer.completeRun(run, { status: "completed", completed_units: 0 });
  await recorder.completed(run);
  recorder.unsubscribe();
  const first = recorder.envelopes[0];
  assert.ok(first !== undefined, "nothing was delivered");
  return first;
}

/** `replay` and the global history through `readLog`. */
export const historyBehaviours: Behaviour[] = [
  {
    name: "replay after any id gives exactly the envelopes that followed it (of all runs, or of the run the id belongs to)",
    needs: ["replay"],
    async run({ create, timeoutMs }) {
      await withFixture(create, async (fixture) => {
        const { log, runs } = await twoRuns(fixture, timeoutMs);
        for (let i = 0; i < log.length; i++) {
          const after = idOf(log[i], `envelope ${i}`);
          const rest = log.slice(i + 1);
          assert.deepEqual(plain((await replayAll(fixture.source, after)) ?? []), plain(rest), `replay after ${after}`);
          for (const run of runs) {
            // One run's replay resumes after that run's own ids; another run's id is not in its log.
            const answer = await replayAll(fixture.source, after, run);
            if (log[i]?.runId === run) {
              assert.deepEqual(
                plain(answer ?? []),
                plain(rest.filter((envelope) => envelope.runId === run)),
                `replay of run ${run} after ${after}`,
              );
            } else {
              assert.equal(answer, null, `replay of run ${run} after ${after}, an id of another run`);
            }
          }
        }
      });
    },
  },
  {
    name: "replay answers null for an id it does not know (another spelling, made up, another source's)",
    needs: ["replay"],
    async run(context) {
      await withFixture(context.create, async (fixture) => {
        const { log } = await twoRuns(fixture, context.timeoutMs);
        for (const id of await foreignIds(context, idOf(log[2], "an envelope"))) {
          const answer = await replayAll(fixture.source, id);
          assert.equal(answer, null, `replay(${JSON.stringify(id)}) is not null but ${JSON.stringify(answer)}`);
        }
      });
    },
  },
  {
    name: "replay answers null once the history no longer reaches back to the id",
    needs: ["replay", "historySize"],
    async run(context) {
      await withFixture(context.create, async (fixture) => {
        const first = await pastHistory(context, fixture);
        const answer = await replayAll(fixture.source, idOf(first, "the first envelope"));
        assert.equal(answer, null, `replay after a trimmed id answered ${JSON.stringify(answer)?.slice(0, 200)}`);
      });
    },
  },
  {
    name: "readLog after any id gives exactly the envelopes that followed it, page by page",
    needs: ["readLog"],
    async run({ create, timeoutMs }) {
      await withFixture(create, async (fixture) => {
        const { log } = await twoRuns(fixture, timeoutMs);
        for (const limit of [1, 4, 1000]) {
          for (let i = 0; i < log.length; i++) {
            const after = idOf(log[i], `envelope ${i}`);
            const read = await readWholeLog(fixture.source, { after }, limit);
            assert.ok(Array.isArray(read), `readLog after ${after} answered ${JSON.stringify(read)}`);
            assert.deepEqual(plain(read), plain(log.slice(i + 1)), `readLog after ${after} in pages of ${limit}`);
          }
        }
      });
    },
  },
  {
    name: "readLog answers unknown_id for an id that is not its own (another spelling, made up, another source's)",
    needs: ["readLog"],
    async run(context) {
      await withFixture(context.create, async (fixture) => {
        const { log } = await twoRuns(fixture, context.timeoutMs);
        for (const id of await foreignIds(context, idOf(log[2], "an envelope"))) {
          const answer = await fixture.source.readLog?.({ after: id, limit: 100 });
          assert.deepEqual(answer, { gap: "unknown_id" }, `readLog after ${JSON.stringify(id)}`);
        }
      });
    },
  },
  {
    name: "readLog answers trimmed once the history no longer reaches back to the id",
    needs: ["readLog", "historySize"],
    async run(context) {
      await withFixture(context.create, async (fixture) => {
        const first = await pastHistory(context, fixture);
        const answer = await fixture.source.readLog?.({ after: idOf(first, "the first envelope"), limit: 10 });
        assert.deepEqual(answer, { gap: "trimmed" }, "readLog after an id the history no longer holds");
      });
    },
  },
];
