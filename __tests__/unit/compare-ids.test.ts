import fc from "fast-check";
import { compareEnvelopeIds } from "../../lib/source";

/** The order spelled out with BigInt: numeric ids part by part (a missing minor part is 0), else strings. */
function reference(a: string, b: string): number {
  const numeric = /^(\d+)(?:-(\d+))?$/;
  const x = numeric.exec(a);
  const y = numeric.exec(b);
  if (x === null || y === null) return a < b ? -1 : a > b ? 1 : 0;
  const parts = (m: RegExpExecArray) => [BigInt(m[1] as string), BigInt(m[2] ?? "0")] as const;
  const [xa, xb] = parts(x);
  const [ya, yb] = parts(y);
  if (xa !== ya) return xa < ya ? -1 : 1;
  return xb === yb ? 0 : xb < yb ? -1 : 1;
}

const digits = fc.stringMatching(/^0{0,3}\d{1,25}$/);
const id = fc.oneof(
  digits,
  fc.tuple(digits, digits).map(([a, b]) => `${a}-${b}`),
  fc.constantFrom("", "-", "1-", "-1", "1--2", "1-2-3", "a", "01x", "١٢"),
  fc.string({ maxLength: 6 }),
);

describe("compareEnvelopeIds", () => {
  it("orders numeric ids numerically part by part, whatever their length or leading zeros, and others as strings", () => {
    fc.assert(
      fc.property(id, id, (a, b) => {
        expect(Math.sign(compareEnvelopeIds(a, b))).toBe(reference(a, b));
      }),
      { numRuns: 5000 },
    );
  });

  it("knows the cases that a string comparison gets wrong", () => {
    expect(compareEnvelopeIds("9-1", "10-0")).toBeLessThan(0);
    expect(compareEnvelopeIds("1700000000000-9", "1700000000000-10")).toBeLessThan(0);
    expect(compareEnvelopeIds("007-1", "7-1")).toBe(0);
    expect(compareEnvelopeIds("5", "5-0")).toBe(0);
    expect(compareEnvelopeIds("5", "5-1")).toBeLessThan(0);
    expect(compareEnvelopeIds("99999999999999999999-1", "100000000000000000000-0")).toBeLessThan(0);
    expect(compareEnvelopeIds("10-2", "10-10")).toBeLessThan(0);
    expect(compareEnvelopeIds("99999999999999999999-1", "99999999999999999998-9")).toBeGreaterThan(0);
    expect(compareEnvelopeIds("b", "a")).toBeGreaterThan(0);
  });
});
