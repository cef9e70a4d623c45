import assert from "node:assert/strict";
import type { Behaviour } from "./behaviour";
import { comparer, idOf, newRunId, plain, Recorder, withFixture, writeEvents } from "./harness";

/** Ids, order and exactly-once delivery through `subscribe`. */
export const liveBehaviours: Behaviour[] = [
  {
    name: "envelope ids are strictly ordered, in the order subscribe delivers them",
    needs: [],
    async run({ create, timeoutMs }) {
      await withFixture(create, async (fixture) => {
        const recorder = new Recorder(fixture.source, timeoutMs);
        const [a, b] = [newRunId("ids-a"), newRunId("ids-b")];
        await fixture.writer.createRun({ id: a });
        await fixture.writer.createRun({ id: b });
        for (let seq = 0; seq < 10; seq++) {
          await fixture.writer.recordEvent(a, { type: "conformance.step", seq });
          await fixture.writer.recordEvent(b, { type: "conformance.step", seq });
          if (seq % 3 === 0) await fixture.writer.updateRun(b, { completed_units: seq });
        }
        await fixture.writer.completeRun(a, { status: "completed", completed_units: 10 });
        await fixture.writer.completeRun(b, { status: "failed", completed_units: 9 });
        await recorder.completed(a);
        await recorder.completed(b);
        recorder.unsubscribe();
        const compare = comparer(fixture.source);
        const ids = recorder.envelopes.map((envelope, i) => idOf(envelope, `envelope ${i}`));
        for (let i = 1; i < ids.length; i++) {
          const [before, after] = [ids[i - 1] as string, ids[i] as string];
          assert.ok(compare(before, after) < 0, `id ${after} (delivered after ${before}) does not sort after it`);
          assert.ok(compare(after, before) > 0, `compareIds(${after}, ${before}) is not positive`);
          assert.equal(compare(after, after), 0, `compareIds(${after}, ${after}) is not 0`);
        }
      });
    },
  },
  {
    name: "subscribe delivers every envelope once, in order, to every subscriber, and stops at unsubscribe",
    needs: [],
    async run({ create, capabilities, timeoutMs }) {
      await withFixture(create, async (fixture) => {
        const first = new Recorder(fixture.source, timeoutMs);
        const second = new Recorder(fixture.source, timeoutMs);
        const gone = new Recorder(fixture.source, timeoutMs);
        gone.unsubscribe();
        const run = newRunId("once");
        await fixture.writer.createRun({ id: run });
        for (let seq = 0; seq < 20; seq++) {
          await fixture.writer.recordEvent(run, { type: "conformance.step", seq });
          if (seq % 4 === 3) await fixture.writer.updateRun(run, { completed_units: seq + 1 });
        }
        await fixture.writer.completeRun(run, { status: "completed", completed_units: 20 });
        await first.completed(run);
        await second.completed(run);
        first.unsubscribe();
        second.unsubscribe();
        const envelopes = first.of(run);
        assert.deepEqual(plain(second.of(run)), plain(envelopes), "two subscribers received different envelopes");
        assert.equal(gone.envelopes.length, 0, "a listener got envelopes after its unsubscribe");
        const ids = envelopes.map((envelope, i) => idOf(envelope, `envelope ${i}`));
        assert.equal(new Set(ids).size, ids.length, `an envelope was delivered twice: ${ids.join(" ")}`);
        assert.equal(envelopes[0]?.type, "state", "the run's first envelope is not a state");
        assert.equal(envelopes[envelopes.length - 1]?.type, "complete", "the run's last envelope is not its complete");
        const events = envelopes.filter((envelope) => envelope.type === "event");
        assert.equal(events.length, 20, `20 events written, ${events.length} delivered`);
        if (capabilities.eventFields !== false) {
          const seqs = events.map((envelope) => (envelope.data as { seq?: unknown }).seq);
          assert.deepEqual(
            seqs,
            Array.from({ length: 20 }, (_, i) => i),
            "events out of order, lost or repeated",
          );
        }
      });
    },
  },
  {
    name: "a subscriber receives what is written right after subscribe returns (a live reader must not start from the newest entry when its first read arrives)",
    needs: [],
    async run({ create, timeoutMs }) {
      await withFixture(create, async (fixture) => {
        const run = newRunId("seam");
        const recorder = new Recorder(fixture.source, timeoutMs);
        // No wait between subscribe and the writes: that is the window a lazily started reader misses.
        await fixture.writer.createRun({ id: run });
        await writeEvents(fixture, run, 0, 5);
        await fixture.writer.completeRun(run, { status: "completed", completed_units: 5 });
        await recorder.completed(run);
        recorder.unsubscribe();
        const types = recorder.of(run).map((envelope) => envelope.type);
        assert.equal(types[0], "state", `the run's first state was missed (got ${types.join(", ")})`);
        assert.equal(
          types.filter((type) => type === "event").length,
          5,
          `events were missed (got ${types.join(", ")})`,
        );
      });
    },
  },
];
