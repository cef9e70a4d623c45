import type { Frame } from "./frames";

/** Most frames a {@link LiveTail} holds, whatever their size (bounds its index). */
const MAX_FRAMES = 200_000;

/** One run's newest frames, oldest first, from `start` on. */
interface RunTail {
  frames: Frame[];
  start: number;
}

/** A frame held and what follows it, up to a page. */
export interface HeldFrames {
  /** The frame with the id asked for. */
  at: Frame;
  /** Frames after it, oldest first. */
  next: Frame[];
}

/**
 * The newest frames as the router received them live from its source, in order: of each run,
 * and of all runs together. While live delivery has had no gap, the frames after one of them
 * are exactly the entries that follow it in the run's log (or in the global history), so a
 * resume from an id still held is served from memory: no source read and no decoding, however
 * many clients resume from the same place at once (a reconnect storm). Oldest frames go
 * first when the budget is reached; a gap in live delivery must {@link clear} what it affects.
 */
export class LiveTail {
  readonly #runs = new Map<string, RunTail>();
  /** Every frame held, in arrival order (the eviction order), from `#head` on. */
  #arrivals: (Frame | undefined)[] = [];
  #head = 0;
  /** Arrivals dropped from the front of `#arrivals` when it was compacted. */
  #dropped = 0;
  /**
   * Arrivals from this position on (counted over every frame ever appended) are the global
   * history without a hole and in increasing id order; before it, continuity was lost.
   */
  #floor = 0;
  #chars = 0;
  readonly #budget: number;
  readonly #compareIds: (a: string, b: string) => number;

  /** @param budget - Characters of frame text held at most; 0 holds nothing. */
  constructor(compareIds: (a: string, b: string) => number, budget: number) {
    this.#compareIds = compareIds;
    this.#budget = budget;
  }

  /** Frames held. */
  get size(): number {
    return this.#arrivals.length - this.#head;
  }

  /** Characters of frame text held. */
  get chars(): number {
    return this.#chars;
  }

  /** Frames ever appended: the position the next one takes. */
  get #appended(): number {
    return this.#dropped + this.#arrivals.length;
  }

  /**
   * Appends a frame the source delivered live. One without an id, or whose id does not follow
   * its run's newest, breaks the run's sequence: what was held of the run is dropped first.
   * One whose id does not follow the newest of all breaks the global sequence. Answers whether
   * the frame is held now (it is not without an id, nor when it alone exceeds the budget).
   */
  append(frame: Frame): boolean {
    if (this.#budget === 0) return false;
    let tail = this.#runs.get(frame.runId);
    const runNewest = tail?.frames.at(-1)?.id;
    if (frame.id === undefined || (runNewest !== undefined && !this.#ascending(runNewest, frame.id))) {
      this.clear(frame.runId);
      tail = undefined;
    }
    if (frame.id === undefined) return false;
    const newest = this.#arrivals.at(-1)?.id;
    if (newest !== undefined && !this.#ascending(newest, frame.id)) this.#floor = this.#appended;
    if (tail === undefined) {
      tail = { frames: [], start: 0 };
      this.#runs.set(frame.runId, tail);
    }
    tail.frames.push(frame);
    this.#arrivals.push(frame);
    this.#chars += frame.text.length;
    while (this.#chars > this.#budget || this.size > MAX_FRAMES) this.#evictOldest();
    return this.size > 0 && this.#arrivals.at(-1) === frame;
  }

  /** The held frame of run `runId` with id `id`, if it is held. */
  get(runId: string, id: string): Frame | undefined {
    const tail = this.#runs.get(runId);
    if (tail === undefined) return undefined;
    const i = this.#find(tail.frames, tail.start, id);
    return i === undefined ? undefined : tail.frames[i];
  }

  /**
   * The frame of run `runId` with id `after` and up to `limit` of that run's frames after it,
   * and whether the run's newest frame held is its `complete`; `undefined` when no frame of
   * the run with that id is held (the source's log must answer).
   */
  after(runId: string, after: string, limit: number): (HeldFrames & { ended: boolean }) | undefined {
    const tail = this.#runs.get(runId);
    if (tail === undefined) return undefined;
    const { frames } = tail;
    const i = this.#find(frames, tail.start, after);
    if (i === undefined) return undefined;
    return {
      at: frames[i] as Frame,
      next: frames.slice(i + 1, i + 1 + limit),
      ended: frames.at(-1)?.type === "complete",
    };
  }

  /**
   * The frame with id `after` and up to `limit` frames of any run after it, in the order
   * received; `undefined` when that id is not held where the global history is known to be
   * continuous.
   */
  globalAfter(after: string, limit: number): HeldFrames | undefined {
    const arrivals = this.#arrivals;
    const i = this.#find(arrivals, Math.max(this.#head, this.#floor - this.#dropped), after);
    if (i === undefined) return undefined;
    return { at: arrivals[i] as Frame, next: arrivals.slice(i + 1, i + 1 + limit) as Frame[] };
  }

  /** Stops serving one run's resumes from memory (the source forgot the run); the global history is unaffected. */
  forget(runId: string): void {
    this.#runs.delete(runId);
  }

  /** Live delivery lost continuity for one run, or for every run: what was held no longer continues into the logs. */
  clear(runId?: string): void {
    this.#floor = this.#appended;
    if (runId !== undefined) {
      this.#runs.delete(runId);
      return;
    }
    this.#runs.clear();
    this.#dropped = this.#appended;
    this.#arrivals = [];
    this.#head = 0;
    this.#chars = 0;
  }

  /**
   * Index of the frame with id `id` in `frames[from..]`, whose ids increase: a binary search,
   * then the very id (one that merely compares equal, "01-1" for "1-1", is the source's to judge).
   */
  #find(frames: readonly (Frame | undefined)[], from: number, id: string): number | undefined {
    let low = from;
    let high = frames.length - 1;
    while (low <= high) {
      const middle = (low + high) >>> 1;
      const order = this.#order((frames[middle] as Frame).id as string, id);
      if (order === undefined) return undefined;
      if (order === 0) return (frames[middle] as Frame).id === id ? middle : undefined;
      if (order < 0) low = middle + 1;
      else high = middle - 1;
    }
    return undefined;
  }

  /**
   * The source's `compareIds`, which is adapter code: one that throws (or answers nonsense)
   * only makes this memory unusable for the ids concerned; the log is read instead.
   */
  #order(a: string, b: string): number | undefined {
    try {
      const order = this.#compareIds(a, b);
      return Number.isNaN(order) ? undefined : order;
    } catch {
      return undefined;
    }
  }

  #ascending(a: string, b: string): boolean {
    const order = this.#order(a, b);
    return order !== undefined && order < 0;
  }

  #evictOldest(): void {
    const oldest = this.#arrivals[this.#head];
    if (oldest === undefined) return;
    this.#arrivals[this.#head] = undefined;
    this.#head++;
    this.#chars -= oldest.text.length;
    if (this.#head > 1024 && this.#head * 2 > this.#arrivals.length) {
      this.#arrivals = this.#arrivals.slice(this.#head);
      this.#dropped += this.#head;
      this.#head = 0;
    }
    const tail = this.#runs.get(oldest.runId);
    if (tail === undefined || tail.frames[tail.start] !== oldest) return;
    tail.start++;
    if (tail.start === tail.frames.length) this.#runs.delete(oldest.runId);
    else if (tail.start > 64 && tail.start * 2 > tail.frames.length) {
      tail.frames = tail.frames.slice(tail.start);
      tail.start = 0;
    }
  }
}
