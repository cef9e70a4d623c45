import assert from "node:assert/strict";
import type { Behaviour } from "./behaviour";
import { idOf, newRunId, otherSpellings, plain, Recorder, readWholeLog, withFixture, writeEvents } from "./harness";

/** One run's log through `readLog({ runId })`. */
export const runLogBehaviours: Behaviour[] = [
  {
    name: "a run's log reads from its first state, holding that run's envelopes only, in order, page by page",
    needs: ["runLogs"],
    async run({ create, timeoutMs }) {
      await withFixture(create, async (fixture) => {
        const recorder = new Recorder(fixture.source, timeoutMs);
        const [a, b] = [newRunId("log-a"), newRunId("log-b")];
        await fixture.writer.createRun({ id: a });
        await fixture.writer.createRun({ id: b });
        for (let seq = 0; seq < 5; seq++) {
          await fixture.writer.recordEvent(a, { type: "conformance.step", seq });
          await fixture.writer.recordEvent(b, { type: "conformance.step", seq });
        }
        // While a run is active, and after its complete.
        await recorder.until(() => recorder.of(a).length >= 6, "run a's first six envelopes");
        const active = await readWholeLog(fixture.source, { runId: a }, 3);
        assert.ok(Array.isArray(active), `an active run's log from the start answered ${JSON.stringify(active)}`);
        assert.ok(active.length >= 6, `an active run's log from the start holds ${active.length} envelopes`);
        const seen = Math.min(active.length, recorder.of(a).length);
        assert.deepEqual(plain(active.slice(0, seen)), plain(recorder.of(a).slice(0, seen)), "an active run's log");
        await fixture.writer.completeRun(a, { status: "completed", completed_units: 5 });
        await fixture.writer.completeRun(b, { status: "completed", completed_units: 5 });
        await recorder.completed(a);
        await recorder.completed(b);
        recorder.unsubscribe();
        for (const run of [a, b]) {
          for (const limit of [1, 3, 1000]) {
            const read = await readWholeLog(fixture.source, { runId: run }, limit);
            assert.ok(Array.isArray(read), `run ${run}'s log from the start answered ${JSON.stringify(read)}`);
            assert.deepEqual(
              plain(read),
              plain(recorder.of(run)),
              `run ${run}'s log from the start, pages of ${limit}`,
            );
            assert.equal(read[0]?.type, "state", "a run's log does not start with its first state");
            assert.equal(read[read.length - 1]?.type, "complete", "a finished run's log does not end with complete");
          }
        }
      });
    },
  },
  {
    name: "a run's log resumes after any of its ids, and answers unknown_id for ids that are not of that log",
    needs: ["runLogs"],
    async run({ create, timeoutMs }) {
      await withFixture(create, async (fixture) => {
        const recorder = new Recorder(fixture.source, timeoutMs);
        const [a, b] = [newRunId("resume-a"), newRunId("resume-b")];
        await fixture.writer.createRun({ id: a });
        await fixture.writer.createRun({ id: b });
        for (let seq = 0; seq < 4; seq++) {
          await fixture.writer.recordEvent(a, { type: "conformance.step", seq });
          await fixture.writer.recordEvent(b, { type: "conformance.step", seq });
        }
        await fixture.writer.completeRun(a, { status: "completed", completed_units: 4 });
        await fixture.writer.completeRun(b, { status: "completed", completed_units: 4 });
        await recorder.completed(a);
        await recorder.completed(b);
        recorder.unsubscribe();
        const log = recorder.of(a);
        for (let i = 0; i < log.length; i++) {
          const after = idOf(log[i], `envelope ${i}`);
          const read = await readWholeLog(fixture.source, { runId: a, after }, 2);
          assert.ok(Array.isArray(read), `run ${a}'s log after ${after} answered ${JSON.stringify(read)}`);
          assert.deepEqual(plain(read), plain(log.slice(i + 1)), `run ${a}'s log after ${after}`);
        }
        const foreign = [
          ...recorder.of(b).map((envelope) => idOf(envelope, "run b's envelope")),
          ...otherSpellings(idOf(log[1], "an envelope")),
          "not-an-id",
          "",
        ];
        for (const id of foreign) {
          const answer = await fixture.source.readLog?.({ runId: a, after: id, limit: 10 });
          assert.deepEqual(answer, { gap: "unknown_id" }, `run ${a}'s log after ${JSON.stringify(id)}`);
        }
      });
    },
  },
  {
    name: "a run that does not exist has no log",
    needs: ["runLogs"],
    async run({ create }) {
      await withFixture(create, async (fixture) => {
        const run = newRunId("missing");
        assert.equal(await fixture.source.readLog?.({ runId: run, limit: 10 }), undefined, "from the start");
        assert.equal(await fixture.source.readLog?.({ runId: run, after: "1-1", limit: 10 }), undefined, "after an id");
      });
    },
  },
  {
    name: "a busy run does not push a quiet run's log out; the busy run's own log reports trimmed",
    needs: ["runLogs", "maxRunLogSize"],
    async run({ create, capabilities, timeoutMs }) {
      await withFixture(create, async (fixture) => {
        const recorder = new Recorder(fixture.source, timeoutMs);
        const [quiet, busy] = [newRunId("quiet"), newRunId("busy")];
        await fixture.writer.createRun({ id: quiet });
        await writeEvents(fixture, quiet, 0, 3);
        await fixture.writer.createRun({ id: busy });
        const count =
          Math.max(capabilities.maxRunLogSize ?? 0, capabilities.historySize ?? 0) + (capabilities.trimSlack ?? 0) + 10;
        await writeEvents(fixture, busy, 0, count);
        await fixture.writer.completeRun(busy, { status: "completed", completed_units: count });
        await recorder.completed(busy);
        recorder.unsubscribe();
        const quietLog = await readWholeLog(fixture.source, { runId: quiet }, 100);
        assert.ok(Array.isArray(quietLog), `the quiet run's log from the start answered ${JSON.stringify(quietLog)}`);
        assert.deepEqual(plain(quietLog), plain(recorder.of(quiet)), "the quiet run's log lost envelopes");
        const busyIds = recorder.of(busy).map((envelope) => idOf(envelope, "busy run's envelope"));
        const fromStart = await fixture.source.readLog?.({ runId: busy, limit: 10 });
        assert.deepEqual(fromStart, { gap: "trimmed" }, "the busy run's log from the start");
        const afterFirst = await fixture.source.readLog?.({ runId: busy, after: busyIds[0], limit: 10 });
        assert.deepEqual(afterFirst, { gap: "trimmed" }, "the busy run's log after its first (trimmed) id");
        const last = busyIds.length - 1;
        const tail = await readWholeLog(fixture.source, { runId: busy, after: busyIds[last - 3] }, 2);
        assert.ok(Array.isArray(tail), `the busy run's log after a retained id answered ${JSON.stringify(tail)}`);
        assert.deepEqual(
          plain(tail),
          plain(recorder.of(busy).slice(last - 2)),
          "the busy run's log after a retained id",
        );
      });
    },
  },
];
