import { copyJsonData, jsonDataProblem, MAX_JSON_DEPTH } from "../../lib/json-data";

function nested(depth: number): Record<string, unknown> {
  let value: Record<string, unknown> = {};
  for (let i = 0; i < depth; i++) value = { inner: value };
  return value;
}

describe("JSON data", () => {
  it("accepts what JSON carries as it is, and copies it as JSON.parse(JSON.stringify()) would", () => {
    const value = {
      s: "x\n",
      n: -1.5,
      b: false,
      z: null,
      list: [1, "two", { three: 3 }, undefined],
      at: new Date("2026-01-01T00:00:00.000Z"),
      gone: undefined,
      // With the enclosing object, exactly MAX_JSON_DEPTH levels.
      deep: nested(MAX_JSON_DEPTH - 2),
    };
    expect(jsonDataProblem(value)).toBeUndefined();
    const copied = copyJsonData(value);
    expect(copied).toEqual({ value: JSON.parse(JSON.stringify(value)) });
    expect("gone" in (copied as { value: object }).value).toBe(false);
  });

  it("keeps __proto__ an own key of the copy, as JSON.parse does, never a prototype", () => {
    const value = JSON.parse('{"__proto__":{"polluted":true}}') as Record<string, unknown>;
    const { value: copy } = copyJsonData(value) as { value: Record<string, unknown> };
    expect(Object.getPrototypeOf(copy)).toBe(Object.prototype);
    expect(Object.keys(copy)).toEqual(["__proto__"]);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it("names the first value JSON cannot carry, and where", () => {
    const cyclic: Record<string, unknown> = {};
    cyclic.again = [cyclic];
    const throwingGetter = Object.defineProperty({}, "x", {
      enumerable: true,
      get() {
        throw new Error("boom");
      },
    });
    const cases: [unknown, (string | number)[], RegExp][] = [
      [{ a: { b: 1n } }, ["a", "b"], /BigInt/],
      [{ a: [0, Symbol("s")] }, ["a", 1], /symbol/],
      [{ f: () => 1 }, ["f"], /function/],
      [{ n: Number.NaN }, ["n"], /NaN, which JSON writes as null/],
      [{ n: [Number.NEGATIVE_INFINITY] }, ["n", 0], /-Infinity/],
      [{ c: cyclic }, ["c", "again", 0], /cycle/],
      [{ m: new Map() }, ["m"], /Map or Set/],
      [{ s: new Set([1]) }, ["s"], /Map or Set/],
      [{ t: { toJSON: () => 2n } }, ["t"], /BigInt/],
      [
        {
          t: {
            toJSON() {
              throw new Error("not ready");
            },
          },
        },
        ["t"],
        /toJSON threw: Error: not ready/,
      ],
      [{ g: throwingGetter }, ["g", "x"], /threw when read: Error: boom/],
      [nested(MAX_JSON_DEPTH + 1), Array(MAX_JSON_DEPTH).fill("inner"), /deeper than/],
    ];
    for (const [value, path, reason] of cases) {
      const problem = jsonDataProblem(value);
      expect(problem?.path).toEqual(path);
      expect(problem?.reason).toMatch(reason);
      expect(copyJsonData(value)).toEqual(problem);
    }
  });

  it("visits a value shared by several parents each time, as JSON does, without calling it a cycle", () => {
    const shared = { n: 1 };
    expect(jsonDataProblem({ a: shared, b: [shared, shared] })).toBeUndefined();
  });
});
