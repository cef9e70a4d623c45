import { envelopeFrame, type Frame } from "../../lib/frames";
import { LiveTail } from "../../lib/live-tail";
import { compareEnvelopeIds } from "../../lib/source";

function frame(runId: string, seq: number, type: "event" | "complete" = "event"): Frame {
  const id = `1-${seq}`;
  return type === "event"
    ? envelopeFrame({ type, runId, id, data: { type: "unit.progress", run_id: runId, ts: "t" } })
    : envelopeFrame({ type, runId, id, data: { id: runId, status: "completed", completed_units: 0 } });
}

const ids = (frames: readonly Frame[] | undefined): Array<string | undefined> | undefined => frames?.map((f) => f.id);

describe("LiveTail: each run's newest frames, in order", () => {
  it("answers the frames after an id it holds, a page at a time, and nothing for an id it does not", () => {
    const tail = new LiveTail(compareEnvelopeIds, 1_000_000);
    for (let seq = 1; seq <= 10; seq++) tail.append(frame(seq % 2 === 0 ? "a" : "b", seq));
    expect(ids(tail.after("a", "1-2", 3)?.next)).toEqual(["1-4", "1-6", "1-8"]);
    expect(ids(tail.after("a", "1-8", 3)?.next)).toEqual(["1-10"]);
    expect(tail.after("a", "1-10", 3)).toMatchObject({ next: [], ended: false });
    expect(tail.after("a", "1-3", 3)).toBeUndefined(); // b's id
    expect(tail.after("c", "1-2", 3)).toBeUndefined();
    expect(tail.size).toBe(10);
  });

  it("says whether it holds what it was given, and hands back a held frame by run and id", () => {
    const one = frame("a", 1).text.length;
    const tail = new LiveTail(compareEnvelopeIds, one * 2);
    const first = frame("a", 1);
    expect(tail.append(first)).toBe(true);
    expect(tail.append({ ...frame("a", 2), id: undefined })).toBe(false);
    expect(tail.append({ ...frame("a", 3), text: "x".repeat(one * 3) })).toBe(false);
    const later = frame("b", 4);
    expect(tail.append(later)).toBe(true);
    expect(tail.get("b", "1-4")).toBe(later);
    expect(tail.get("a", "1-4")).toBeUndefined();
    expect(tail.get("b", "4-1")).toBeUndefined();
    tail.append(frame("b", 5));
    tail.append(frame("b", 6));
    expect(tail.get("b", "1-4")).toBeUndefined(); // aged out
    expect(new LiveTail(compareEnvelopeIds, 0).append(frame("a", 1))).toBe(false);
  });

  it("tells a run whose newest frame is its complete", () => {
    const tail = new LiveTail(compareEnvelopeIds, 1_000_000);
    tail.append(frame("a", 1));
    tail.append(frame("a", 2, "complete"));
    expect(tail.after("a", "1-1", 5)).toMatchObject({ ended: true });
    expect(tail.after("a", "1-2", 5)?.at.type).toBe("complete");
  });

  it("drops a run's frames when one arrives out of order or without an id: its sequence is broken", () => {
    const tail = new LiveTail(compareEnvelopeIds, 1_000_000);
    for (const seq of [1, 2, 3]) tail.append(frame("a", seq));
    tail.append(frame("b", 4));
    tail.append(frame("a", 2));
    expect(tail.after("a", "1-1", 5)).toBeUndefined();
    expect(ids(tail.after("a", "1-2", 5)?.next)).toEqual([]);
    tail.append({ ...frame("a", 9), id: undefined });
    expect(tail.after("a", "1-2", 5)).toBeUndefined();
    expect(ids(tail.after("b", "1-4", 5)?.next)).toEqual([]);
  });

  it("keeps within its budget, oldest frames of any run first, and holds nothing with a budget of 0", () => {
    const one = frame("a", 1).text.length;
    const tail = new LiveTail(compareEnvelopeIds, one * 3);
    for (let seq = 1; seq <= 6; seq++) tail.append(frame(seq <= 3 ? "a" : "b", seq));
    expect(tail.size).toBe(3);
    expect(tail.chars).toBeLessThanOrEqual(one * 3);
    expect(tail.after("a", "1-3", 5)).toBeUndefined();
    expect(ids(tail.after("b", "1-4", 5)?.next)).toEqual(["1-5", "1-6"]);
    const none = new LiveTail(compareEnvelopeIds, 0);
    none.append(frame("a", 1));
    expect(none.size).toBe(0);
    expect(none.after("a", "1-1", 5)).toBeUndefined();
  });

  it("a run's sequence broken by a gap: its older frames serve no resume, per run or global, and age out", () => {
    const one = frame("a", 1).text.length;
    const tail = new LiveTail(compareEnvelopeIds, one * 4);
    for (let seq = 1; seq <= 3; seq++) tail.append(frame("a", seq));
    tail.clear("a");
    expect(tail.after("a", "1-1", 5)).toBeUndefined();
    expect(tail.globalAfter("1-1", 5)).toBeUndefined();
    // Still in memory until they age out: counted.
    expect(tail.size).toBe(3);
    for (let seq = 4; seq <= 7; seq++) tail.append(frame("a", seq));
    expect(tail.size).toBe(4);
    expect(ids(tail.after("a", "1-4", 5)?.next)).toEqual(["1-5", "1-6", "1-7"]);
    expect(ids(tail.globalAfter("1-4", 5)?.next)).toEqual(["1-5", "1-6", "1-7"]);
    tail.append(frame("a", 8));
    expect(tail.after("a", "1-4", 5)).toBeUndefined();
    expect(ids(tail.after("a", "1-5", 5)?.next)).toEqual(["1-6", "1-7", "1-8"]);
    tail.clear();
    expect(tail.size).toBe(0);
    expect(tail.chars).toBe(0);
    expect(tail.after("a", "1-8", 5)).toBeUndefined();
    expect(tail.globalAfter("1-8", 5)).toBeUndefined();
  });

  it("answers the global history after an id, every run in the order received, from where it is known continuous", () => {
    const tail = new LiveTail(compareEnvelopeIds, 1_000_000);
    for (let seq = 1; seq <= 6; seq++) tail.append(frame(seq % 2 === 0 ? "a" : "b", seq));
    expect(ids(tail.globalAfter("1-2", 3)?.next)).toEqual(["1-3", "1-4", "1-5"]);
    expect(ids(tail.globalAfter("1-6", 3)?.next)).toEqual([]);
    expect(tail.globalAfter("1-7", 3)).toBeUndefined();
    expect(tail.globalAfter("01-2", 3)).toBeUndefined();
    // A frame out of global order (ids unique only within a run, say): nothing before it serves.
    tail.append(frame("c", 3));
    expect(tail.globalAfter("1-5", 3)).toBeUndefined();
    expect(ids(tail.globalAfter("1-3", 3)?.next)).toEqual([]);
    // Forgetting a run stops its per-run resumes only.
    tail.append(frame("c", 9));
    tail.forget("c");
    expect(tail.after("c", "1-3", 3)).toBeUndefined();
    expect(ids(tail.globalAfter("1-3", 3)?.next)).toEqual(["1-9"]);
  });

  it("a compareIds that throws or answers NaN (adapter code) never throws here: nothing it cannot order is served", () => {
    const picky = (a: string, b: string): number => {
      if (a.endsWith("-9") || b.endsWith("-9")) throw new Error("cannot parse");
      if (a.endsWith("-8") || b.endsWith("-8")) return Number.NaN;
      return compareEnvelopeIds(a, b);
    };
    const tail = new LiveTail(picky, 1_000_000);
    for (const seq of [1, 2, 8, 3, 9, 4]) expect(() => tail.append(frame("a", seq))).not.toThrow();
    expect(() => tail.after("a", "1-9", 5)).not.toThrow();
    expect(tail.after("a", "1-1", 5)).toBeUndefined();
    expect(tail.globalAfter("1-2", 5)).toBeUndefined();
    expect(ids(tail.after("a", "1-4", 5)?.next)).toEqual([]);
  });
});
