import fc from "fast-check";
import { drainSchedule, jitteredRetryMs, shuffle, streamLifetimeMs } from "../../lib/jitter";

describe("jitter", () => {
  it("a connection's retry stays within [0.5, 1.5] x retryMs, whole ms, at least 1", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 10_000_000 }),
        fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
        (ms, r) => {
          const retry = jitteredRetryMs(ms, () => r);
          expect(Number.isInteger(retry)).toBe(true);
          expect(retry).toBeGreaterThanOrEqual(Math.max(1, Math.floor(ms * 0.5)));
          expect(retry).toBeLessThanOrEqual(Math.ceil(ms * 1.5));
        },
      ),
    );
    expect(jitteredRetryMs(3000, () => 0)).toBe(1500);
    expect(jitteredRetryMs(3000, () => 0.5)).toBe(3000);
  });

  it("a stream's lifetime stays within [0.75, 1] x maxStreamMs", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 10_000_000 }),
        fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
        (ms, r) => {
          const lifetime = streamLifetimeMs(ms, () => r);
          expect(lifetime).toBeGreaterThanOrEqual(Math.max(1, Math.floor(ms * 0.75)));
          expect(lifetime).toBeLessThanOrEqual(ms);
        },
      ),
    );
  });

  it("a drain schedule puts one end in each slot of the window, in ascending order", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 500 }), fc.integer({ min: 1, max: 60_000 }), (count, windowMs) => {
        const times = drainSchedule(count, windowMs);
        expect(times).toHaveLength(count);
        const slot = windowMs / count;
        const outside = times.findIndex(
          (at, i) => at < i * slot || at > (i + 1) * slot || (i > 0 && at < (times[i - 1] as number)),
        );
        expect(outside).toBe(-1);
      }),
    );
  });

  it("shuffle keeps every item", () => {
    fc.assert(
      fc.property(fc.array(fc.integer()), (items) => {
        expect(shuffle([...items]).sort()).toEqual([...items].sort());
      }),
    );
  });
});
