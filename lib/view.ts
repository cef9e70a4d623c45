import { isValidRunId, isValidTag } from "./schema";

/**
 * Which runs a client may see, as `authorize` answers it or a stream token carries it: the
 * runs that carry one of `tags` or are listed in `runs` (a union). A scope that lists
 * neither lets no run through, so a scope built from an empty list never widens to every run.
 */
export interface StreamScope {
  /** Runs carrying any of these tags are in scope. */
  tags?: readonly string[] | undefined;
  /** These runs are in scope. */
  runs?: readonly string[] | undefined;
}

/** The most entries `?tags=` and `?runs=` may list, and a scope may hold per list. */
export const MAX_FILTER_ENTRIES = 100;

/** One union of tags and runs: a scope, or a stream's `?tags=`/`?runs=` filter. */
class Selector {
  readonly tags: ReadonlySet<string>;
  readonly runs: ReadonlySet<string>;
  readonly key: string;

  constructor(tags: Iterable<string>, runs: Iterable<string>) {
    this.tags = new Set(tags);
    this.runs = new Set(runs);
    this.key = `t=${[...this.tags].sort().join(",")};r=${[...this.runs].sort().join(",")}`;
  }

  matches(runId: string, tags: readonly string[] | undefined): boolean {
    if (this.runs.has(runId)) return true;
    if (this.tags.size === 0 || tags === undefined) return false;
    for (const tag of tags) if (this.tags.has(tag)) return true;
    return false;
  }
}

/**
 * What one client sees: the runs that every selector lets through (scope ∩ filters). With no
 * selector, every run. Clients with the same {@link View.key} see exactly the same runs, so
 * they share one chunk per tick.
 */
export class View {
  /** Canonical text of the view: `""` for every run. */
  readonly key: string;
  readonly #selectors: readonly Selector[];

  private constructor(selectors: readonly Selector[]) {
    const unique = new Map<string, Selector>();
    for (const selector of selectors) unique.set(selector.key, selector);
    this.#selectors = [...unique.values()].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    this.key = this.#selectors.map((selector) => selector.key).join("&");
  }

  /** The view of every run. */
  static readonly ALL = new View([]);

  /** The intersection of scopes and filters (`undefined` ones are left out). */
  static of(...scopes: (StreamScope | undefined)[]): View {
    const selectors: Selector[] = [];
    for (const scope of scopes) {
      if (scope !== undefined) selectors.push(new Selector(scope.tags ?? [], scope.runs ?? []));
    }
    return selectors.length === 0 ? View.ALL : new View(selectors);
  }

  /** Whether this is every run. */
  get all(): boolean {
    return this.#selectors.length === 0;
  }

  /** Whether any selector looks at tags (so a run's tags must be known to place it). */
  get needsTags(): boolean {
    return this.#selectors.some((selector) => selector.tags.size > 0);
  }

  /** Whether the view lets the run through, given its tags (`undefined`: not known, so not by tag). */
  includes(runId: string, tags: readonly string[] | undefined): boolean {
    for (const selector of this.#selectors) if (!selector.matches(runId, tags)) return false;
    return true;
  }

  /**
   * Tags and runs of which a run must carry or be one to be in view (those of one selector:
   * a superset of the view), for finding the views a run may be in without asking each;
   * `undefined` for the view of every run.
   */
  get anchor(): { tags: ReadonlySet<string>; runs: ReadonlySet<string> } | undefined {
    return this.#selectors[0];
  }

  /** Whether every selector lists the run by id, so the run is in view whatever its tags, existing or not. */
  listsRun(runId: string): boolean {
    return this.#selectors.every((selector) => selector.runs.has(runId));
  }
}

/**
 * A scope as `authorize` answered it, checked: `undefined` when it is not one (the host's
 * bug, answered with a 500). Lists of invalid tags or run ids are refused, not trimmed.
 */
export function checkScope(value: unknown): StreamScope | undefined {
  if (value === null || typeof value !== "object" || Array.isArray(value)) return undefined;
  const { tags, runs } = value as { tags?: unknown; runs?: unknown };
  if (tags !== undefined && !(Array.isArray(tags) && tags.every(isValidTag))) return undefined;
  if (runs !== undefined && !(Array.isArray(runs) && runs.every(isValidRunId))) return undefined;
  return { tags: tags as string[] | undefined, runs: runs as string[] | undefined };
}

/** A comma-separated query list (`?tags=a,b`, repeated parameters joined), or `null` when absent. */
function queryList(query: URLSearchParams, name: string): string[] | null {
  const raw = query.getAll(name);
  if (raw.length === 0) return null;
  return [
    ...new Set(
      raw
        .flatMap((value) => value.split(","))
        .map((entry) => entry.trim())
        .filter((entry) => entry !== ""),
    ),
  ];
}

/**
 * The global stream's `?tags=` and `?runs=` as one filter (a union), `undefined` when neither
 * is given, or the problem as a message. On a per-run stream both are refused.
 */
export function parseFilter(query: URLSearchParams, runId: string | null): StreamScope | undefined | string {
  const tags = queryList(query, "tags");
  const runs = queryList(query, "runs");
  if (tags === null && runs === null) return undefined;
  if (runId !== null) {
    return `${tags !== null ? "tags" : "runs"} is not supported on a run's stream: filter the global stream instead`;
  }
  const lists: [name: string, list: string[] | null, valid: (entry: string) => boolean, what: string][] = [
    ["tags", tags, isValidTag, "tag"],
    ["runs", runs, isValidRunId, "run id"],
  ];
  for (const [name, list, valid, what] of lists) {
    if (list === null) continue;
    if (list.length === 0) return `${name} is empty: list at least one ${what}, comma-separated`;
    if (list.length > MAX_FILTER_ENTRIES) return `${name} lists ${list.length} entries: at most ${MAX_FILTER_ENTRIES}`;
    const bad = list.find((entry) => !valid(entry));
    if (bad !== undefined) {
      return `invalid ${what} ${JSON.stringify(bad.slice(0, 140))} in ${name}: use 1 to 128 characters of [A-Za-z0-9._:-]`;
    }
  }
  return { tags: tags ?? undefined, runs: runs ?? undefined };
}
