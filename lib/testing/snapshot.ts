import assert from "node:assert/strict";
import type { Envelope, RunState } from "../schema";
import type { RunSnapshot } from "../source";
import type { Behaviour } from "./behaviour";
import { newRunId, Recorder, turn, withFixture } from "./harness";

/** The state of `runId` as of envelope `cursor`: the data of its newest state or complete up to there. */
function stateAt(envelopes: readonly Envelope[], runId: string, cursor: string): RunState | undefined {
  const end = envelopes.findIndex((envelope) => envelope.id === cursor);
  assert.ok(end >= 0, `the cursor ${cursor} is not the id of any envelope subscribe delivered`);
  let state: RunState | undefined;
  for (const envelope of envelopes.slice(0, end + 1)) {
    if (envelope.runId === runId && envelope.type !== "event") state = envelope.data as RunState;
  }
  return state;
}

function json(value: unknown): unknown {
  return JSON.parse(JSON.stringify(value));
}

/** Snapshots and their cursors. */
export const snapshotBehaviours: Behaviour[] = [
  {
    name: "a snapshot and its cursor are read atomically under concurrent writes (the state is the run's state as of the cursor)",
    needs: ["snapshot"],
    async run({ create, timeoutMs }) {
      await withFixture(create, async (fixture) => {
        const snapshot = fixture.source.snapshot?.bind(fixture.source);
        assert.ok(snapshot !== undefined, "the source declares snapshot but has no snapshot method");
        const recorder = new Recorder(fixture.source, timeoutMs);
        const run = newRunId("snapshot");
        await fixture.writer.createRun({ id: run });
        let writing = true;
        const writes = (async () => {
          try {
            for (let seq = 0; seq < 40; seq++) {
              await fixture.writer.recordEvent(run, { type: "conformance.step", seq });
              await turn();
              await fixture.writer.updateRun(run, { completed_units: seq + 1 });
              await turn();
            }
          } finally {
            writing = false;
          }
        })();
        const taken: { one: RunSnapshot | undefined; all: RunSnapshot | undefined }[] = [];
        while (writing) {
          const [one, all] = await Promise.all([snapshot(run), snapshot()]);
          taken.push({ one, all });
          // A varying pace, so snapshots land at every point of the writer's cycle.
          for (let turns = 0; turns <= taken.length % 3; turns++) await turn();
        }
        await writes;
        await fixture.writer.completeRun(run, { status: "completed", completed_units: 40 });
        await recorder.completed(run);
        recorder.unsubscribe();
        assert.ok(taken.length > 0, "no snapshot was taken while writing");
        const runEnvelopes = recorder.of(run);
        for (const { one, all } of taken) {
          assert.ok(one !== undefined, "snapshot(runId) of an existing run answered undefined");
          assert.equal(one.states.length, 1, "snapshot(runId) must hold exactly that run's state");
          assert.ok(typeof one.cursor === "string", "snapshot(runId) of a run with envelopes has no cursor");
          assert.ok(
            runEnvelopes.some((envelope) => envelope.id === one.cursor),
            `snapshot(runId)'s cursor ${one.cursor} is not an id of that run's envelopes`,
          );
          assert.deepEqual(
            json(one.states[0]),
            json(stateAt(recorder.envelopes, run, one.cursor)),
            `snapshot(runId) state does not match its cursor ${one.cursor}: state and cursor were not read together`,
          );
          assert.ok(all !== undefined && typeof all.cursor === "string", "snapshot() has no cursor");
          const mine = all.states.find((state) => state.id === run);
          assert.deepEqual(
            json(mine),
            json(stateAt(recorder.envelopes, run, all.cursor)),
            `snapshot() state does not match its cursor ${all.cursor}: state and cursor were not read together`,
          );
        }
        const final = await snapshot(run);
        assert.equal(
          final?.cursor,
          runEnvelopes[runEnvelopes.length - 1]?.id,
          "a finished run's cursor is not its complete",
        );
      });
    },
  },
  {
    name: "every envelope after a snapshot's cursor reaches a subscriber that was listening before the snapshot",
    needs: ["snapshot"],
    async run({ create, timeoutMs }) {
      await withFixture(create, async (fixture) => {
        const snapshot = fixture.source.snapshot?.bind(fixture.source);
        assert.ok(snapshot !== undefined, "the source declares snapshot but has no snapshot method");
        const run = newRunId("after-cursor");
        await fixture.writer.createRun({ id: run });
        const recorder = new Recorder(fixture.source, timeoutMs);
        const taken = await snapshot(run);
        assert.ok(taken?.cursor !== undefined, "snapshot(runId) of an existing run has no cursor");
        for (let seq = 0; seq < 5; seq++) await fixture.writer.recordEvent(run, { type: "conformance.step", seq });
        await fixture.writer.completeRun(run, { status: "completed", completed_units: 5 });
        await recorder.completed(run);
        recorder.unsubscribe();
        const events = recorder.of(run).filter((envelope) => envelope.type === "event");
        assert.equal(events.length, 5, `5 events written after the snapshot, ${events.length} delivered`);
      });
    },
  },
  {
    name: "a run's snapshot cursor is the id of that run's newest envelope, whatever other runs write",
    needs: ["snapshot", "runLogs"],
    async run({ create, timeoutMs }) {
      await withFixture(create, async (fixture) => {
        const snapshot = fixture.source.snapshot?.bind(fixture.source);
        assert.ok(snapshot !== undefined, "the source declares snapshot but has no snapshot method");
        const recorder = new Recorder(fixture.source, timeoutMs);
        const [quiet, busy] = [newRunId("cursor-quiet"), newRunId("cursor-busy")];
        await fixture.writer.createRun({ id: quiet });
        await fixture.writer.recordEvent(quiet, { type: "conformance.step", seq: 0 });
        await fixture.writer.createRun({ id: busy });
        for (let seq = 0; seq < 5; seq++) await fixture.writer.recordEvent(busy, { type: "conformance.step", seq });
        await fixture.writer.completeRun(busy, { status: "completed", completed_units: 5 });
        await recorder.completed(busy);
        const taken = await snapshot(quiet);
        assert.ok(taken?.cursor !== undefined, "the quiet run's snapshot has no cursor");
        await recorder.until(
          () => recorder.envelopes.some((envelope) => envelope.id === taken.cursor),
          `the envelope of the quiet run's cursor ${taken.cursor}`,
        );
        const quietIds = recorder.of(quiet).map((envelope) => envelope.id);
        assert.equal(taken.cursor, quietIds[quietIds.length - 1], "the run's cursor is not its own newest envelope");
        const rest = await fixture.source.readLog?.({ runId: quiet, after: taken.cursor, limit: 10 });
        assert.deepEqual(
          rest,
          { envelopes: [] },
          "reading the run's log after its snapshot cursor is not an empty page",
        );
        recorder.unsubscribe();
      });
    },
  },
];
