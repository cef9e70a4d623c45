import * as z from "zod";
import { RunStateSchema } from "../../lib/index";
import { variantOf } from "../../lib/react/store";

describe("how runcast/react tells options apart", () => {
  it("shares watchers between options equal by value, whatever their order", () => {
    expect(variantOf({ from: "start", types: ["unit.started"] })).toBe(
      variantOf({ types: ["unit.started"], from: "start" }),
    );
    expect(variantOf({ from: "start" })).not.toBe(variantOf({}));
  });

  it("compares schemas and constructors by identity, and never fails on them", () => {
    const a = { state: RunStateSchema.extend({ units: z.array(z.string()) }) };
    const b = { state: RunStateSchema.extend({ units: z.array(z.string()) }) };
    expect(() => variantOf({ schemas: a })).not.toThrow();
    expect(variantOf({ schemas: a })).toBe(variantOf({ schemas: a }));
    expect(variantOf({ schemas: a })).not.toBe(variantOf({ schemas: b }));
    class One {}
    class Two {}
    expect(variantOf({ EventSource: One })).not.toBe(variantOf({ EventSource: Two }));
  });
});
