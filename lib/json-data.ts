/**
 * What runcast carries: JSON data. Everything a run state or event holds goes to clients as
 * JSON, into Redis as JSON, and is read back from JSON, so a value JSON cannot write (a
 * BigInt, a cycle, a `toJSON` that throws) or would silently change (a function or symbol
 * left out, `NaN` written as `null`, a `Map` written as `{}`) is refused where it enters,
 * rather than failing later for every client of its run.
 */

/** Deepest nesting of objects and arrays accepted. */
export const MAX_JSON_DEPTH = 256;

/** Where a value stops being JSON data, and why. */
export interface JsonDataProblem {
  /** Keys and indices from the root to the offending value (empty for the root). */
  path: (string | number)[];
  /** What is wrong there, e.g. "a BigInt, which JSON cannot write". */
  reason: string;
}

/** Thrown inside a walk to stop at the first problem; never escapes this module. */
class NotJson {
  constructor(readonly reason: string) {}
}

function hasToJson(value: object): value is { toJSON(key: string): unknown } {
  return typeof (value as { toJSON?: unknown }).toJSON === "function";
}

/** One walk over a value, as `JSON.stringify` would visit it, optionally building the JSON copy. */
class Walk {
  /** The path to the value being visited; left where a problem was found. */
  readonly path: (string | number)[] = [];
  readonly #enclosing = new Set<object>();

  constructor(
    readonly copy: boolean,
    readonly freeze = false,
  ) {}

  /** The value as JSON would carry it (`undefined` when JSON leaves it out), or throws {@link NotJson}. */
  visit(value: unknown, key: string, applyToJson = true): unknown {
    switch (typeof value) {
      case "string":
      case "boolean":
      case "undefined":
        return value;
      case "number":
        if (Number.isFinite(value)) return value;
        throw new NotJson(`${value}, which JSON writes as null`);
      case "bigint":
        throw new NotJson("a BigInt, which JSON cannot write");
      case "symbol":
        throw new NotJson("a symbol, which JSON leaves out");
      case "function":
        throw new NotJson("a function, which JSON leaves out");
    }
    if (value === null) return null;
    const object = value as object;
    // As JSON.stringify does: `toJSON` first (a Date becomes its ISO string), once.
    if (applyToJson && hasToJson(object)) {
      let replaced: unknown;
      try {
        replaced = object.toJSON(key);
      } catch (error) {
        throw new NotJson(`an object whose toJSON threw: ${String(error)}`);
      }
      return this.visit(replaced, key, false);
    }
    if (this.#enclosing.has(object)) throw new NotJson("a cycle (an object inside itself), which JSON cannot write");
    if (this.#enclosing.size >= MAX_JSON_DEPTH)
      throw new NotJson(`nested deeper than the ${MAX_JSON_DEPTH} levels of JSON runcast carries`);
    if (object instanceof Map || object instanceof Set) throw new NotJson("a Map or Set, which JSON writes as {}");
    this.#enclosing.add(object);
    const out = Array.isArray(object) ? this.#array(object) : this.#object(object as Record<string, unknown>);
    this.#enclosing.delete(object);
    return out;
  }

  #array(array: readonly unknown[]): readonly unknown[] | undefined {
    const out: unknown[] | undefined = this.copy ? new Array(array.length) : undefined;
    for (let i = 0; i < array.length; i++) {
      this.path.push(i);
      const item = this.visit(array[i], String(i));
      // JSON writes a missing item as null.
      if (out !== undefined) out[i] = item === undefined ? null : item;
      this.path.pop();
    }
    return this.freeze && out !== undefined ? Object.freeze(out) : out;
  }

  #object(object: Record<string, unknown>): Record<string, unknown> | undefined {
    const out: Record<string, unknown> | undefined = this.copy ? {} : undefined;
    for (const key of Object.keys(object)) {
      this.path.push(key);
      const item = this.visit(object[key], key);
      // JSON leaves out a property whose value is undefined; `__proto__` stays an own key, as
      // JSON.parse makes it (assigning it would set the copy's prototype instead).
      if (out !== undefined && item !== undefined) {
        if (key === "__proto__") {
          Object.defineProperty(out, key, { value: item, enumerable: true, writable: true, configurable: true });
        } else out[key] = item;
      }
      this.path.pop();
    }
    return this.freeze && out !== undefined ? Object.freeze(out) : out;
  }
}

function walk(value: unknown, copy: boolean, freeze = false): { value: unknown } | JsonDataProblem {
  const walker = new Walk(copy, freeze);
  try {
    return { value: walker.visit(value, "") };
  } catch (error) {
    // Anything else thrown is the value's own code (a getter, a proxy) or a stack too deep.
    const reason = error instanceof NotJson ? error.reason : `a value that threw when read: ${String(error)}`;
    return { path: [...walker.path], reason };
  }
}

/** Why `value` is not JSON data, or `undefined` when it is. Reads the value as `JSON.stringify` would. */
export function jsonDataProblem(value: unknown): JsonDataProblem | undefined {
  const walked = walk(value, false);
  return "reason" in walked ? walked : undefined;
}

/**
 * `value` as the JSON data it stands for (what `JSON.parse(JSON.stringify(value))` gives:
 * `toJSON` applied, `undefined` properties left out), a copy sharing nothing with it, or the
 * problem that keeps it from being JSON data. With `freeze`, every object and array of the
 * copy is frozen.
 */
export function copyJsonData<T>(value: T, freeze = false): { value: T } | JsonDataProblem {
  return walk(value, true, freeze) as { value: T } | JsonDataProblem;
}

/** A problem as one line: `meta.n: a BigInt, which JSON cannot write`. */
export function describeJsonProblem(problem: JsonDataProblem, root: string): string {
  const where = problem.path.length === 0 ? root : `${root}.${problem.path.join(".")}`;
  return `${where} is ${problem.reason}`;
}
