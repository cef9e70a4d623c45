import type { Envelope } from "./schema";

/**
 * One run's envelopes in order, for `MemoryRunSource`: at most `capacity` of them, the
 * oldest dropped first. Each entry keeps its sequence number beside it, so a resume point
 * is found by binary search and a page is a slice: reading costs what is read, never a
 * scan of the log or of other runs.
 */
export class RunLog {
  readonly #capacity: number;
  /** Sequence numbers and envelopes, from `#head` on (entries before it were dropped). */
  #seqs: number[] = [];
  #envelopes: Envelope[] = [];
  #head = 0;
  /** Sequence number of the run's very first envelope, whether or not it is still kept. */
  readonly firstSeq: number;

  constructor(capacity: number, first: { seq: number; envelope: Envelope }) {
    this.#capacity = capacity;
    this.firstSeq = first.seq;
    this.append(first.seq, first.envelope);
  }

  /** Envelopes kept. */
  get size(): number {
    return this.#seqs.length - this.#head;
  }

  /** Whether the log still starts with the run's first envelope. */
  get complete(): boolean {
    return this.#seqs[this.#head] === this.firstSeq;
  }

  /** Sequence number of the newest envelope. */
  get lastSeq(): number {
    return this.#seqs[this.#seqs.length - 1] as number;
  }

  /** Sequence number of the oldest envelope kept. */
  get oldestSeq(): number {
    return this.#seqs[this.#head] as number;
  }

  append(seq: number, envelope: Envelope): void {
    this.#seqs.push(seq);
    this.#envelopes.push(envelope);
    if (this.size > this.#capacity) this.#head++;
    // Compact once the dropped prefix is as large as what is kept, so memory stays bounded
    // and each entry is moved a constant number of times on average.
    if (this.#head >= 1024 && this.#head * 2 >= this.#seqs.length) {
      this.#seqs = this.#seqs.slice(this.#head);
      this.#envelopes = this.#envelopes.slice(this.#head);
      this.#head = 0;
    }
  }

  /** Index of the entry with sequence number `seq`, or -1. */
  indexOf(seq: number): number {
    let lo = this.#head;
    let hi = this.#seqs.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const at = this.#seqs[mid] as number;
      if (at === seq) return mid;
      if (at < seq) lo = mid + 1;
      else hi = mid - 1;
    }
    return -1;
  }

  /** Up to `limit` envelopes from index `from` (an index from {@link indexOf} plus one, or the start). */
  page(from: number, limit: number): Envelope[] {
    const start = Math.max(from, this.#head);
    return this.#envelopes.slice(start, start + limit);
  }

  /** Index of the oldest entry kept: where a read from the start begins. */
  get start(): number {
    return this.#head;
  }
}
