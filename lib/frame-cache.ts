import type { Frame } from "./frames";

/** Default budget of a {@link FrameCache}: the text of this many characters of frames. */
export const DEFAULT_FRAME_CACHE_CHARS = 16 * 1024 * 1024;

/**
 * Frames by run and envelope id, least recently used dropped first, so each log entry is
 * validated and serialized once however many clients replay it (a reconnect storm replays
 * the same entries to every client). Keyed by run as well as id: an adapter's ids need only
 * be unique within a run.
 */
export class FrameCache {
  readonly #frames = new Map<string, Frame>();
  readonly #budget: number;
  #chars = 0;

  constructor(budget = DEFAULT_FRAME_CACHE_CHARS) {
    this.#budget = budget;
  }

  get(runId: string, id: string): Frame | undefined {
    const key = `${runId} ${id}`;
    const frame = this.#frames.get(key);
    if (frame !== undefined) {
      // Re-inserting moves the entry to the end: the Map's order is the recency order.
      this.#frames.delete(key);
      this.#frames.set(key, frame);
    }
    return frame;
  }

  /** Keeps a frame that has an id. */
  set(frame: Frame): void {
    if (frame.id === undefined) return;
    const key = `${frame.runId} ${frame.id}`;
    const prior = this.#frames.get(key);
    if (prior !== undefined) this.#chars -= prior.text.length;
    this.#frames.delete(key);
    this.#frames.set(key, frame);
    this.#chars += frame.text.length;
    for (const [oldest, old] of this.#frames) {
      if (this.#chars <= this.#budget) break;
      this.#frames.delete(oldest);
      this.#chars -= old.text.length;
    }
  }
}
