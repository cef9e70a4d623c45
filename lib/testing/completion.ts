import assert from "node:assert/strict";
import type { Envelope } from "../schema";
import type { Behaviour } from "./behaviour";
import { idOf, newRunId, plain, Recorder, readWholeLog, withFixture, writeEvents } from "./harness";

/** Tries a write to a finished run: throws when the source must refuse it, and is ignored otherwise. */
async function writeAfterEnd(runId: string, mustThrow: boolean, what: string, write: () => unknown) {
  let threw = false;
  try {
    await write();
  } catch {
    threw = true;
  }
  if (mustThrow) assert.ok(threw, `${what} on the finished run ${runId} did not throw`);
}

/** `complete` ends a run. */
export const completionBehaviours: Behaviour[] = [
  {
    name: "complete is a run's last envelope and nothing follows it (live, in its log, its snapshot and its completion)",
    needs: [],
    async run({ create, capabilities, timeoutMs }) {
      await withFixture(create, async (fixture) => {
        const recorder = new Recorder(fixture.source, timeoutMs);
        const runs = [newRunId("done-ok"), newRunId("done-failed")];
        for (const [index, run] of runs.entries()) {
          await fixture.writer.createRun({ id: run });
          await writeEvents(fixture, run, 0, 3);
          await fixture.writer.completeRun(run, { status: index === 0 ? "completed" : "failed", completed_units: 3 });
          // Once the complete is out, whatever is written to the run must not follow it.
          await recorder.completed(run);
          const strict = capabilities.rejectsWritesAfterComplete === true;
          await writeAfterEnd(run, strict, "recordEvent", () =>
            fixture.writer.recordEvent(run, { type: "conformance.step", seq: 99 }),
          );
          await writeAfterEnd(run, strict, "updateRun", () => fixture.writer.updateRun(run, { completed_units: 99 }));
          await writeAfterEnd(run, strict, "completeRun", () =>
            fixture.writer.completeRun(run, { status: "completed", completed_units: 99 }),
          );
        }
        // A later run's complete: once it is delivered, anything written to the finished runs would have been too.
        const barrier = newRunId("barrier");
        await fixture.writer.createRun({ id: barrier });
        await fixture.writer.completeRun(barrier, { status: "completed", completed_units: 0 });
        await recorder.completed(barrier);
        recorder.unsubscribe();
        for (const run of runs) {
          const envelopes = recorder.of(run);
          const completes = envelopes.filter((envelope) => envelope.type === "complete");
          assert.equal(completes.length, 1, `run ${run} delivered ${completes.length} complete envelopes`);
          const complete = envelopes[envelopes.length - 1] as Envelope;
          assert.equal(complete.type, "complete", `run ${run}: ${complete.type} delivered after its complete`);
          const state = complete.data as { status: string };
          assert.ok(
            ["completed", "failed", "cancelled"].includes(state.status),
            `complete with status ${state.status}`,
          );
          assert.deepEqual(
            plain([{ ...complete, data: await fixture.source.getRun(run) } as Envelope]),
            plain([complete]),
            "getRun of a finished run is not its complete's state",
          );
          const active = await fixture.source.listRuns();
          assert.ok(!active.some((listed) => listed.id === run), "listRuns still lists a finished run");
          const completeId = idOf(complete, "the complete");
          if (capabilities.completion === true) {
            const completion = await fixture.source.getCompletion?.(run);
            assert.deepEqual(plain(completion === undefined ? [] : [completion]), plain([complete]), "getCompletion");
          }
          if (capabilities.snapshot === true) {
            const snapshot = await fixture.source.snapshot?.(run);
            assert.deepEqual(
              JSON.parse(JSON.stringify(snapshot?.states)),
              [JSON.parse(JSON.stringify(complete.data))],
              "snapshot of a finished run",
            );
            if (capabilities.runLogs === true) assert.equal(snapshot?.cursor, completeId, "a finished run's cursor");
          }
          if (capabilities.runLogs === true) {
            const after = await fixture.source.readLog?.({ runId: run, after: completeId, limit: 10 });
            assert.deepEqual(after, { envelopes: [] }, "a run's log after its complete");
            const whole = await readWholeLog(fixture.source, { runId: run }, 100);
            assert.ok(Array.isArray(whole), `a finished run's log answered ${JSON.stringify(whole)}`);
            assert.deepEqual(plain(whole), plain(envelopes), "a finished run's log");
          }
        }
      });
    },
  },
];
