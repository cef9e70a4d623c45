import assert from "node:assert/strict";
import type { Behaviour } from "./behaviour";
import { newRunId, Recorder, withFixture } from "./harness";

/** Faults of a networked store. */
export const networkBehaviours: Behaviour[] = [
  {
    name: "a write is recorded once when the connection drops while it is in flight",
    needs: ["network"],
    async run({ create, capabilities, timeoutMs }) {
      await withFixture(create, async (fixture) => {
        const drop = fixture.dropConnectionMidWrite?.bind(fixture);
        assert.ok(drop !== undefined, "the source declares network but its fixture has no dropConnectionMidWrite");
        const recorder = new Recorder(fixture.source, timeoutMs);
        const run = newRunId("dropped");
        await fixture.writer.createRun({ id: run });
        for (let seq = 0; seq < 3; seq++) {
          await drop();
          await fixture.writer.recordEvent(run, { type: "conformance.step", seq });
        }
        await drop();
        await fixture.writer.updateRun(run, { completed_units: 3 });
        await drop();
        await fixture.writer.completeRun(run, { status: "completed", completed_units: 3 });
        await recorder.completed(run);
        recorder.unsubscribe();
        const envelopes = recorder.of(run);
        const events = envelopes.filter((envelope) => envelope.type === "event");
        assert.equal(events.length, 3, `3 events written through dropped connections, ${events.length} recorded`);
        if (capabilities.eventFields !== false) {
          assert.deepEqual(
            events.map((envelope) => (envelope.data as { seq?: unknown }).seq),
            [0, 1, 2],
            "an event was recorded twice or lost",
          );
        }
        const states = envelopes.filter(
          (envelope) => (envelope.data as { completed_units?: unknown }).completed_units === 3,
        );
        assert.equal(states.filter((envelope) => envelope.type === "state").length, 1, "the update was recorded twice");
        assert.equal(envelopes.filter((envelope) => envelope.type === "complete").length, 1, "complete recorded twice");
        if (capabilities.runLogs === true) {
          const logged = await fixture.source.readLog?.({ runId: run, limit: 1000 });
          assert.ok(logged !== undefined && "envelopes" in logged, `the run's log answered ${JSON.stringify(logged)}`);
          assert.equal(logged.envelopes.length, envelopes.length, "the run's log and live delivery disagree");
        }
      });
    },
  },
];
