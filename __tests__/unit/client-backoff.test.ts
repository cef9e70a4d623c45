import { reconnectDelay } from "../../lib/client/backoff";

describe("runcast/client reconnect delays", () => {
  it("are jittered: 200 draws differ and all lie between half the delay and the whole delay", () => {
    for (const [failures, delay] of [
      [1, 1000],
      [2, 2000],
      [3, 4000],
      [10, 30_000],
    ] as const) {
      const draws = Array.from({ length: 200 }, () => reconnectDelay(failures, 1000, 30_000));
      expect(new Set(draws).size).toBeGreaterThan(150);
      expect(Math.min(...draws)).toBeGreaterThanOrEqual(delay / 2);
      expect(Math.max(...draws)).toBeLessThanOrEqual(delay);
      // Spread over the range, not bunched at one end.
      expect(Math.max(...draws) - Math.min(...draws)).toBeGreaterThan(delay / 4);
    }
  });

  it("double with each failure in a row and stop at maxRetryMs", () => {
    expect([1, 2, 3, 4, 5, 6].map((failures) => reconnectDelay(failures, 100, 1000, 0.999_999))).toEqual(
      [100, 200, 400, 800, 1000, 1000].map((ms) => expect.closeTo(ms, 2)),
    );
    expect(reconnectDelay(1, 100, 1000, 0)).toBe(50);
    expect(reconnectDelay(1_000_000, 100, 1000, 0)).toBe(500);
  });
});
