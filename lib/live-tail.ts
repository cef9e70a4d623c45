import type { Frame } from "./frames";

/** Most frames a {@link LiveTail} holds, whatever their size (bounds its index). */
const MAX_FRAMES = 200_000;

/** One run's newest frames, oldest first, from `start` on. */
interface RunTail {
  frames: Frame[];
  start: number;
}

/**
 * The newest frames of each run as the router received them live from its source, in order.
 * While live delivery has had no gap, the frames after one of them are exactly the entries
 * that follow it in the run's log, so a resume from an id still held is served from memory:
 * no source read and no decoding, however many clients resume from the same place at once (a
 * reconnect storm). Oldest frames go first when the budget is reached; a gap in live delivery
 * must {@link clear} what it affects.
 */
export class LiveTail {
  readonly #runs = new Map<string, RunTail>();
  /** Every frame held, in arrival order: the eviction order. */
  #arrivals: (Frame | undefined)[] = [];
  #head = 0;
  #held = 0;
  #chars = 0;
  readonly #budget: number;
  readonly #compareIds: (a: string, b: string) => number;

  /** @param budget - Characters of frame text held at most; 0 holds nothing. */
  constructor(compareIds: (a: string, b: string) => number, budget: number) {
    this.#compareIds = compareIds;
    this.#budget = budget;
  }

  /** Frames held, every run. */
  get size(): number {
    return this.#held;
  }

  /** Characters of frame text held. */
  get chars(): number {
    return this.#chars;
  }

  /**
   * Appends a frame the source delivered live. One without an id, or whose id does not follow
   * its run's newest, breaks the run's sequence: what was held of the run is dropped first.
   */
  append(frame: Frame): void {
    if (this.#budget === 0) return;
    let tail = this.#runs.get(frame.runId);
    const newest = tail?.frames.at(-1);
    if (
      tail !== undefined &&
      (frame.id === undefined || newest?.id === undefined || this.#compareIds(newest.id, frame.id) >= 0)
    ) {
      this.clear(frame.runId);
      tail = undefined;
    }
    if (frame.id === undefined) return;
    if (tail === undefined) {
      tail = { frames: [], start: 0 };
      this.#runs.set(frame.runId, tail);
    }
    tail.frames.push(frame);
    this.#arrivals.push(frame);
    this.#held++;
    this.#chars += frame.text.length;
    // Dropped frames still wait in the arrival order: they count against its length too.
    while (this.#chars > this.#budget || this.#arrivals.length - this.#head > MAX_FRAMES) this.#evictOldest();
  }

  /**
   * The frame of run `runId` with id `after` and up to `limit` frames after it, oldest first,
   * and whether the run's newest frame held is its `complete`; `undefined` when no frame with
   * that id is held (the source's log must answer).
   */
  after(runId: string, after: string, limit: number): { at: Frame; next: Frame[]; ended: boolean } | undefined {
    const tail = this.#runs.get(runId);
    if (tail === undefined) return undefined;
    const { frames } = tail;
    // Binary search: ids increase along a run's frames (`append` keeps it so).
    let low = tail.start;
    let high = frames.length - 1;
    while (low <= high) {
      const middle = (low + high) >>> 1;
      const order = this.#compareIds((frames[middle] as Frame).id as string, after);
      if (order === 0) {
        const at = frames[middle] as Frame;
        // Only the very id: one that merely compares equal ("01-1" for "1-1") is the source's to judge.
        if (at.id !== after) return undefined;
        return { at, next: frames.slice(middle + 1, middle + 1 + limit), ended: frames.at(-1)?.type === "complete" };
      }
      if (order < 0) low = middle + 1;
      else high = middle - 1;
    }
    return undefined;
  }

  /** Drops what is held of one run, or of every run: live delivery lost continuity there. */
  clear(runId?: string): void {
    if (runId === undefined) {
      this.#runs.clear();
      this.#arrivals = [];
      this.#head = 0;
      this.#held = 0;
      this.#chars = 0;
      return;
    }
    const tail = this.#runs.get(runId);
    if (tail === undefined) return;
    this.#runs.delete(runId);
    // Its frames stay in the arrival order until they come up for eviction, where they are
    // recognised as gone (not at the start of their run's tail) and skipped.
    for (let i = tail.start; i < tail.frames.length; i++) this.#chars -= (tail.frames[i] as Frame).text.length;
    this.#held -= tail.frames.length - tail.start;
  }

  #evictOldest(): void {
    const oldest = this.#arrivals[this.#head];
    if (oldest === undefined) return;
    this.#arrivals[this.#head] = undefined;
    this.#head++;
    if (this.#head > 1024 && this.#head * 2 > this.#arrivals.length) {
      this.#arrivals = this.#arrivals.slice(this.#head);
      this.#head = 0;
    }
    const tail = this.#runs.get(oldest.runId);
    if (tail === undefined || tail.frames[tail.start] !== oldest) return;
    this.#chars -= oldest.text.length;
    this.#held--;
    tail.start++;
    if (tail.start === tail.frames.length) this.#runs.delete(oldest.runId);
    else if (tail.start > 64 && tail.start * 2 > tail.frames.length) {
      tail.frames = tail.frames.slice(tail.start);
      tail.start = 0;
    }
  }
}
