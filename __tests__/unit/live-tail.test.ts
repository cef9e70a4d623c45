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
    expect(tail.size).toBe(1);
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

  it("a cleared run's frames are not counted, and its newer frames are kept apart from them", () => {
    const one = frame("a", 1).text.length;
    const tail = new LiveTail(compareEnvelopeIds, one * 4);
    for (let seq = 1; seq <= 3; seq++) tail.append(frame("a", seq));
    tail.clear("a");
    expect(tail.size).toBe(0);
    expect(tail.chars).toBe(0);
    for (let seq = 4; seq <= 7; seq++) tail.append(frame("a", seq));
    expect(tail.size).toBe(4);
    expect(ids(tail.after("a", "1-4", 5)?.next)).toEqual(["1-5", "1-6", "1-7"]);
    tail.append(frame("a", 8));
    expect(tail.after("a", "1-4", 5)).toBeUndefined();
    expect(ids(tail.after("a", "1-5", 5)?.next)).toEqual(["1-6", "1-7", "1-8"]);
    tail.clear();
    expect(tail.size).toBe(0);
    expect(tail.after("a", "1-8", 5)).toBeUndefined();
  });
});
