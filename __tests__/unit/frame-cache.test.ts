import { FrameCache } from "../../lib/frame-cache";
import { envelopeFrame, type Frame } from "../../lib/frames";

function frame(seq: number): Frame {
  return envelopeFrame({
    type: "event",
    runId: "r",
    id: `1-${seq}`,
    data: { type: "unit.progress", run_id: "r", ts: "t" },
  });
}

describe("FrameCache: frames by run and id within a budget", () => {
  it("stays within its budget however many frames pass through, and finds the newest", () => {
    const size = frame(1).text.length;
    const cache = new FrameCache(size * 10);
    for (let seq = 1; seq <= 10_000; seq++) cache.set(frame(seq));
    expect(cache.chars).toBeLessThanOrEqual(size * 10);
    expect(cache.get("r", "1-10000")?.id).toBe("1-10000");
    expect(cache.get("r", "1-9996")?.id).toBe("1-9996");
    expect(cache.get("r", "1-1")).toBeUndefined();
    expect(cache.get("other", "1-10000")).toBeUndefined();
  });

  it("keeps a frame that is asked for again over frames nobody asks for", () => {
    const size = frame(1).text.length;
    const cache = new FrameCache(size * 4);
    cache.set(frame(1));
    for (let seq = 2; seq <= 40; seq++) {
      expect(cache.get("r", "1-1")?.id).toBe("1-1");
      cache.set(frame(seq));
    }
    expect(cache.get("r", "1-2")).toBeUndefined();
  });

  it("counts a frame set twice once", () => {
    const cache = new FrameCache(1_000_000);
    cache.set(frame(1));
    cache.set(frame(1));
    expect(cache.chars).toBe(frame(1).text.length);
    cache.set({ ...frame(2), id: undefined });
    expect(cache.chars).toBe(frame(1).text.length);
  });
});
