import { MemoryRunSource } from "./memory";
import { describeIssues, type Envelope, EnvelopeSchema, type RunState, WireRunStateSchema } from "./schema";
import type { RunEventSource } from "./source";

/** A value checked: what it is, or what is wrong with it. */
export type Checked<T> = { ok: true; value: T } | { ok: false; problem: string };

/** How the router checks the values a source gives it: envelopes (live or from its log) and snapshot states. */
export interface SourceCheck {
  envelope(candidate: unknown): Checked<Envelope>;
  state(candidate: unknown): Checked<RunState>;
}

/** The full check against {@link EnvelopeSchema}: for adapters' envelopes and the router's own `broadcast`. */
export function validateEnvelope(candidate: unknown): Checked<Envelope> {
  const parsed = EnvelopeSchema.safeParse(candidate);
  return parsed.success ? { ok: true, value: parsed.data } : { ok: false, problem: describeIssues(parsed.error) };
}

/** Every value validated: any adapter's. */
const VALIDATE: SourceCheck = {
  envelope: validateEnvelope,
  state(candidate) {
    const parsed = WireRunStateSchema.safeParse(candidate);
    return parsed.success ? { ok: true, value: parsed.data } : { ok: false, problem: describeIssues(parsed.error) };
  },
};

/** Values built from writer input that was validated, copied and frozen when it was written. */
const TRUST: SourceCheck = {
  envelope: (candidate) => ({ ok: true, value: candidate as Envelope }),
  state: (candidate) => ({ ok: true, value: candidate as RunState }),
};

/**
 * How the router checks `source`'s values. A `MemoryRunSource` builds every envelope and
 * state from writer input it validated, copied and froze, so checking them again would only
 * double the work of every event and every snapshot. Only the class itself, as constructed
 * (its state is all in private fields, so it has no own properties): a subclass, or an
 * instance with a method replaced, could hand out anything, and is validated like any source.
 */
export function sourceCheck(source: RunEventSource): SourceCheck {
  const untouched = Object.getPrototypeOf(source) === MemoryRunSource.prototype && Reflect.ownKeys(source).length === 0;
  return untouched ? TRUST : VALIDATE;
}
