import type { Frame } from "./frames";

/** Default budget of a {@link FrameCache}: the text of this many characters of frames. */
export const DEFAULT_FRAME_CACHE_CHARS = 16 * 1024 * 1024;

/**
 * Frames by run and envelope id, so each log entry is validated and serialized once however
 * many clients replay it (a reconnect storm replays the same entries to every client). Keyed
 * by run as well as id: an adapter's ids need only be unique within a run.
 *
 * Two generations rather than an exact LRU: frames go into the young one, and when it holds
 * half the budget it becomes the old one (the previous old one is dropped whole); a frame
 * found in the old one moves back to the young one. Every operation is O(1): evicting the
 * oldest entries of one Map one by one makes V8 skip its deleted slots on every eviction,
 * which cost more than the rest of a live envelope's handling.
 */
export class FrameCache {
  #young = new Map<string, Frame>();
  #old = new Map<string, Frame>();
  #youngChars = 0;
  #oldChars = 0;
  readonly #generation: number;

  constructor(budget = DEFAULT_FRAME_CACHE_CHARS) {
    this.#generation = Math.max(1, Math.floor(budget / 2));
  }

  /** Characters of frame text held, both generations. */
  get chars(): number {
    return this.#youngChars + this.#oldChars;
  }

  get(runId: string, id: string): Frame | undefined {
    const key = `${runId} ${id}`;
    const young = this.#young.get(key);
    if (young !== undefined) return young;
    const old = this.#old.get(key);
    if (old !== undefined) {
      this.#old.delete(key);
      this.#oldChars -= old.text.length;
      this.#keep(key, old);
    }
    return old;
  }

  /** Keeps a frame that has an id. */
  set(frame: Frame): void {
    if (frame.id === undefined) return;
    const key = `${frame.runId} ${frame.id}`;
    const young = this.#young.get(key);
    if (young !== undefined) {
      this.#young.delete(key);
      this.#youngChars -= young.text.length;
    } else {
      const old = this.#old.get(key);
      if (old !== undefined) {
        this.#old.delete(key);
        this.#oldChars -= old.text.length;
      }
    }
    this.#keep(key, frame);
  }

  #keep(key: string, frame: Frame): void {
    this.#young.set(key, frame);
    this.#youngChars += frame.text.length;
    if (this.#youngChars < this.#generation) return;
    this.#old = this.#young;
    this.#oldChars = this.#youngChars;
    this.#young = new Map();
    this.#youngChars = 0;
  }
}
