import { createParser, type EventSourceMessage } from "eventsource-parser";
import fc from "fast-check";
import { envelopeFrame } from "../../lib/frames";
import { type Envelope, EnvelopeSchema, MemoryRunSource } from "../../lib/index";

function parseAll(text: string): EventSourceMessage[] {
  const out: EventSourceMessage[] = [];
  const parser = createParser({ onEvent: (m) => out.push(m) });
  parser.feed(text);
  return out;
}

const idChar = fc.constantFrom(..."abcXYZ0189._:-");
const runId = fc.string({ unit: idChar, minLength: 1, maxLength: 128 });
const segment = fc.stringMatching(/^[a-z][a-z0-9_-]{0,8}$/);
const eventType = fc.array(segment, { minLength: 1, maxLength: 3 }).map((parts) => parts.join("."));
const envelopeId = fc.stringMatching(/^[\x21-\x7e]{1,40}$/);
/** Extra fields full of what could break a frame: CR, LF, CRLF, NUL, colons, unicode line separators. */
const tricky = fc.string({
  unit: fc.constantFrom("a", "\r", "\n", "\r\n", "\0", ":", " ", "\u2028", "é", "😀", "data: x"),
});
const extras = fc.dictionary(
  fc
    .string({ minLength: 1, maxLength: 8 })
    .filter(
      (k) =>
        !["type", "run_id", "unit", "ts", "id", "status", "completed_units", "total_units"].includes(k) &&
        k !== "__proto__",
    ),
  fc.oneof(tricky, fc.integer(), fc.boolean()),
  { maxKeys: 4 },
);
const ts = fc
  .date({ min: new Date("2000-01-01"), max: new Date("2100-01-01"), noInvalidDate: true })
  .map((d) => d.toISOString());

const envelope: fc.Arbitrary<Envelope> = fc.oneof(
  fc
    .record({
      runId,
      id: fc.option(envelopeId, { nil: undefined }),
      type: eventType,
      unit: fc.option(
        tricky.filter((u) => u.length > 0 && u.length <= 256),
        { nil: undefined },
      ),
      ts,
      extra: extras,
    })
    .map(({ runId, id, type, unit, ts, extra }) => ({
      type: "event" as const,
      runId,
      ...(id === undefined ? {} : { id }),
      data: { ...extra, type, run_id: runId, ts, ...(unit === undefined ? {} : { unit }) },
    })),
  fc
    .record({
      runId,
      id: fc.option(envelopeId, { nil: undefined }),
      status: fc.constantFrom("pending" as const, "running" as const),
      done: fc.nat(),
      extra: extras,
    })
    .map(({ runId, id, status, done, extra }) => ({
      type: "state" as const,
      runId,
      ...(id === undefined ? {} : { id }),
      data: { ...extra, id: runId, status, completed_units: done },
    })),
  fc
    .record({
      runId,
      id: envelopeId,
      status: fc.constantFrom("completed" as const, "failed" as const, "cancelled" as const),
      extra: extras,
    })
    .map(({ runId, id, status, extra }) => ({
      type: "complete" as const,
      runId,
      id,
      data: { ...extra, id: runId, status, completed_units: 0 },
    })),
);

describe("framing (property tests)", () => {
  it("any valid envelope, framed and parsed by a spec-compliant SSE parser, comes back equal", () => {
    fc.assert(
      fc.property(envelope, (candidate) => {
        const valid = EnvelopeSchema.parse(candidate);
        const messages = parseAll(envelopeFrame(valid).text);
        expect(messages).toHaveLength(1);
        const [m] = messages as [EventSourceMessage];
        expect(m.event).toBe(valid.type);
        expect(m.id).toBe(valid.id);
        expect(JSON.parse(m.data)).toEqual(valid.data);
      }),
      { numRuns: 500 },
    );
  });

  it("several frames in one chunk come back as the same envelopes, in order", () => {
    fc.assert(
      fc.property(fc.array(envelope, { minLength: 1, maxLength: 10 }), (list) => {
        const valid = list.map((e) => EnvelopeSchema.parse(e));
        const messages = parseAll(valid.map((e) => envelopeFrame(e).text).join(""));
        expect(messages.map((m) => [m.event, m.id, JSON.parse(m.data)])).toEqual(
          valid.map((e) => [e.type, e.id, e.data]),
        );
      }),
      { numRuns: 200 },
    );
  });

  it("a string with CR or LF can never become a run id, an event name or an envelope id", () => {
    const withBreak = fc
      .tuple(fc.string({ maxLength: 10 }), fc.constantFrom("\r", "\n", "\r\n"), fc.string({ maxLength: 10 }))
      .map(([a, b, c]) => `${a}${b}${c}`);
    fc.assert(
      fc.property(withBreak, (bad) => {
        const ts = new Date().toISOString();
        const ok = { type: "event", runId: "r", id: "1", data: { type: "unit.started", run_id: "r", ts } };
        expect(EnvelopeSchema.safeParse({ ...ok, id: bad }).success).toBe(false);
        expect(EnvelopeSchema.safeParse({ ...ok, runId: bad, data: { ...ok.data, run_id: bad } }).success).toBe(false);
        expect(EnvelopeSchema.safeParse({ ...ok, data: { ...ok.data, type: bad } }).success).toBe(false);
        const source = new MemoryRunSource();
        expect(() => source.createRun({ id: bad })).toThrow();
        source.createRun({ id: "r" });
        expect(() => source.recordEvent("r", { type: bad })).toThrow();
      }),
      { numRuns: 300 },
    );
  });
});
