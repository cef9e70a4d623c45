import type { ErrorContext } from "./options";
import { isValidTag, type RunState } from "./schema";
import type { RunEventSource } from "./source";

/** How many runs' tags a router remembers (least recently learnt forgotten first; looked up again when needed). */
export const RUN_TAGS_CAPACITY = 100_000;

const NO_TAGS: readonly string[] = Object.freeze([]);

/**
 * The tags of runs, as the router learns them: events do not carry their run's tags, so a
 * scoped stream places an event by what the run's `state` said. Tags are fixed for a run's
 * life, so what was learnt once stays true; a run not seen yet is looked up from the source.
 */
export class RunTags {
  readonly #known = new Map<string, readonly string[]>();
  readonly #pending = new Map<string, Promise<void>>();
  readonly #source: RunEventSource;
  readonly #report: (error: unknown, context: ErrorContext) => void;
  readonly #capacity: number;

  constructor(
    source: RunEventSource,
    report: (error: unknown, context: ErrorContext) => void,
    capacity = RUN_TAGS_CAPACITY,
  ) {
    this.#source = source;
    this.#report = report;
    this.#capacity = capacity;
  }

  /** The run's tags (`[]` for a run without tags), or `undefined` while not known. */
  get(runId: string): readonly string[] | undefined {
    return this.#known.get(runId);
  }

  /** Learns a run's tags from one of its (validated) states. */
  learn(state: Pick<RunState, "id" | "tags">): void {
    this.#set(state.id, state.tags);
  }

  /** Learns from a state that was validated once already (a cached log entry): its tags are checked again, cheaply. */
  learnUnchecked(runId: string, tags: unknown): void {
    if (tags === undefined || (Array.isArray(tags) && tags.every(isValidTag))) this.#set(runId, tags);
  }

  /**
   * Looks up the tags of the runs not known yet. A run the source does not know (or a lookup
   * that fails, reported) stays unknown: it is in no view by tag, so nothing leaks.
   */
  async resolve(runIds: Iterable<string>): Promise<void> {
    const waits: Promise<void>[] = [];
    for (const runId of runIds) {
      if (this.#known.has(runId)) continue;
      let pending = this.#pending.get(runId);
      if (pending === undefined) {
        pending = this.#lookUp(runId).finally(() => this.#pending.delete(runId));
        this.#pending.set(runId, pending);
      }
      waits.push(pending);
    }
    if (waits.length > 0) await Promise.all(waits);
  }

  async #lookUp(runId: string): Promise<void> {
    try {
      const state = await this.#source.getRun(runId);
      const tags = (state as { tags?: unknown } | undefined)?.tags;
      // Whatever arrived meanwhile from the run's own envelopes is as true and newer.
      if (state !== undefined && !this.#known.has(runId)) this.learnUnchecked(runId, tags);
    } catch (error) {
      this.#report(error, { phase: "source", runId });
    }
  }

  #set(runId: string, tags: readonly string[] | undefined): void {
    if (this.#known.has(runId)) {
      this.#known.delete(runId);
    } else if (this.#known.size >= this.#capacity) {
      const oldest = this.#known.keys().next().value;
      if (oldest !== undefined) this.#known.delete(oldest);
    }
    this.#known.set(runId, tags === undefined || tags.length === 0 ? NO_TAGS : tags);
  }
}
