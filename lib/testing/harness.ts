import assert from "node:assert/strict";
import type { Envelope } from "../schema";
import { compareEnvelopeIds, type LogGap, type LogPage, type LogQuery, type RunEventSource } from "../source";
import type { SourceFixture } from "./types";

/** Everything a subscriber received, with a way to wait (event-driven, with a timeout) for more. */
export class Recorder {
  readonly envelopes: Envelope[] = [];
  readonly #waiters = new Set<() => void>();
  readonly #timeoutMs: number;
  readonly unsubscribe: () => void;

  constructor(source: RunEventSource, timeoutMs: number) {
    this.#timeoutMs = timeoutMs;
    this.unsubscribe = source.subscribe((envelope) => {
      this.envelopes.push(envelope);
      for (const waiter of [...this.#waiters]) waiter();
    });
  }

  /** The envelopes of one run, in the order received. */
  of(runId: string): Envelope[] {
    return this.envelopes.filter((envelope) => envelope.runId === runId);
  }

  /** Waits until `done()` holds; fails with `what` after the timeout. */
  until(done: () => boolean, what: string): Promise<void> {
    if (done()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const waiter = (): void => {
        if (!done()) return;
        clearTimeout(timer);
        this.#waiters.delete(waiter);
        resolve();
      };
      const timer = setTimeout(() => {
        this.#waiters.delete(waiter);
        reject(
          new assert.AssertionError({
            message: `subscribe never delivered ${what} within ${this.#timeoutMs} ms (got ${this.envelopes.length} envelopes)`,
          }),
        );
      }, this.#timeoutMs);
      this.#waiters.add(waiter);
    });
  }

  /** Waits for run `runId`'s `complete`. */
  completed(runId: string): Promise<void> {
    return this.until(
      () => this.envelopes.some((envelope) => envelope.runId === runId && envelope.type === "complete"),
      `run ${runId}'s complete`,
    );
  }
}

/** Runs `body` on a fresh fixture, closing it afterwards whatever happens. */
export async function withFixture(
  create: () => SourceFixture | Promise<SourceFixture>,
  body: (fixture: SourceFixture) => Promise<void>,
): Promise<void> {
  const fixture = await create();
  try {
    await body(fixture);
  } finally {
    await fixture.close?.();
  }
}

/** A fresh run id, unique within the suite's run. */
let runCounter = 0;
export function newRunId(label: string): string {
  runCounter += 1;
  return `conformance.${label}.${process.pid}-${Date.now().toString(36)}-${runCounter}`;
}

/** A macrotask turn, so that concurrent work (snapshots, a live reader) runs between writes. */
export function turn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** Orders ids the way the source says it does. */
export function comparer(source: RunEventSource): (a: string, b: string) => number {
  return source.compareIds === undefined ? compareEnvelopeIds : (a, b) => source.compareIds?.(a, b) ?? 0;
}

/** The id of an envelope that must have one. */
export function idOf(envelope: Envelope | undefined, where: string): string {
  assert.ok(envelope !== undefined, `${where}: no envelope`);
  assert.equal(typeof envelope.id, "string", `${where}: envelope without an id: ${JSON.stringify(envelope)}`);
  return envelope.id as string;
}

/** Envelopes as comparable values (type, run, id, data). */
export function plain(envelopes: readonly Envelope[]): unknown[] {
  return envelopes.map(({ type, runId, id, data }) => JSON.parse(JSON.stringify({ type, runId, id, data })));
}

/** Whether a `readLog` answer is a gap. */
export function isGap(answer: LogPage | LogGap | undefined): answer is LogGap {
  return answer !== undefined && "gap" in answer;
}

/**
 * Reads a log to its end in pages of `limit`, checking that no page is longer than `limit`;
 * the first page's gap or `undefined` is returned as is.
 */
export async function readWholeLog(
  source: RunEventSource,
  query: Omit<LogQuery, "limit">,
  limit: number,
): Promise<Envelope[] | LogGap | undefined> {
  const readLog = source.readLog?.bind(source);
  assert.ok(readLog !== undefined, "the source declares readLog but has no readLog method");
  const out: Envelope[] = [];
  let after = query.after;
  for (let pages = 0; ; pages++) {
    assert.ok(pages < 100_000, "readLog never returned a short page");
    const answer: LogPage | LogGap | undefined = await readLog({ ...query, after, limit });
    if (answer === undefined || isGap(answer)) {
      if (pages === 0) return answer;
      assert.fail(`readLog answered ${JSON.stringify(answer)} after the id of its own previous page's last envelope`);
    }
    assert.ok(Array.isArray(answer.envelopes), `readLog answered ${JSON.stringify(answer)}, not a page`);
    assert.ok(answer.envelopes.length <= limit, `a page of ${answer.envelopes.length} envelopes for limit ${limit}`);
    out.push(...answer.envelopes);
    if (answer.envelopes.length < limit) return out;
    after = idOf(answer.envelopes[answer.envelopes.length - 1], "readLog page");
  }
}

/** Collects an answer of `replay` (array, async iterable or null). */
export async function replayAll(source: RunEventSource, afterId: string, runId?: string): Promise<Envelope[] | null> {
  const replay = source.replay?.bind(source);
  assert.ok(replay !== undefined, "the source declares replay but has no replay method");
  const answer = await replay(afterId, runId);
  if (answer === null) return null;
  if (Array.isArray(answer)) return answer;
  const out: Envelope[] = [];
  for await (const envelope of answer as AsyncIterable<Envelope>) out.push(envelope);
  return out;
}

/**
 * Spellings of `id` that are not `id`: a source with one canonical spelling must treat them as
 * unknown, never as a position in its log.
 */
export function otherSpellings(id: string): string[] {
  const out = [` ${id}`, `${id} `, `${id}x`, `0${id}`, id.toUpperCase() === id ? id.toLowerCase() : id.toUpperCase()];
  return [...new Set(out)].filter((other) => other !== id);
}

/** Writes `count` events (seq `from` ..) to `runId`, awaiting each. */
export async function writeEvents(fixture: SourceFixture, runId: string, from: number, count: number): Promise<void> {
  for (let seq = from; seq < from + count; seq++) {
    await fixture.writer.recordEvent(runId, { type: "conformance.step", seq });
  }
}
