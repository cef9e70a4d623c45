import { createElement as h } from "react";
import { renderToString } from "react-dom/server";
import { MemoryRunSource } from "../../lib/index";
import { type RunView, useRun, useRuns } from "../../lib/react/index";
import { serve } from "../helpers/server";

/** What the last render of {@link Panel} got from `useRun`. */
let seen: RunView | undefined;

function Panel({ base }: { base: string }) {
  seen = useRun(`${base}/api/runs/r/stream`);
  const all = useRuns(`${base}/api/stream`);
  return h("p", null, `${seen.status} ${seen.events.length} ${all.runs.size}`);
}

describe("runcast/react in server rendering", () => {
  it("renders the initial view and opens no connection (Node has no EventSource, and none is made)", async () => {
    const source = new MemoryRunSource();
    source.createRun({ id: "r" });
    const t = await serve(source, { heartbeatMs: 60_000 });
    try {
      const html = renderToString(h(Panel, { base: t.url }));
      expect(html).toBe("<p>connecting 0 0</p>");
      expect(seen).toMatchObject({ state: undefined, events: [], status: "connecting", error: undefined });
      // Whatever the server-side render did, it made no request: nothing is left waiting either.
      await new Promise((resolve) => setImmediate(resolve));
      expect(t.router.clientCount()).toBe(0);
      expect(renderToString(h(Panel, { base: t.url }))).toBe(html);
    } finally {
      await t.close();
    }
  });
});
