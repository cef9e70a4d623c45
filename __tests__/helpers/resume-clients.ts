// A crowd of SSE clients in a process of its own, so that reading (or not reading) megabytes
// of replayed frames costs the server's event loop nothing: the test measures the server alone.
// Configured through the first message from the parent: { url, clients, mode, marker?, until? }.
// - mode "read": every client reads its stream to the end (or, with `until`, until it counted
//   that many markers), counting frames by `marker` (default: their `id:` line) and keeping the
//   last id; reports { type: "done", results: [{ frames, lastId, status }] }.
// - mode "stall": every client reads the head, then stops reading for good (its socket stays
//   open); reports { type: "stalled" } once all heads arrived, and closes all on { type: "stop" }.
import http from "node:http";

interface Setup {
  url: string;
  clients: number;
  mode: "read" | "stall";
  marker?: string;
  until?: number;
}

interface Result {
  status: number;
  frames: number;
  lastId: string | undefined;
}

const ID_LINE = "\nid: ";

/** Counts markers (`id:` lines by default) across chunk boundaries and remembers the last id, without parsing every frame. */
function readAll({ url, marker = ID_LINE, until = Number.POSITIVE_INFINITY }: Setup): Promise<Result> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent: false }, (res) => {
      const result: Result = { status: res.statusCode ?? 0, frames: 0, lastId: undefined };
      let tail = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => {
        const text = tail + chunk;
        let at = text.indexOf(marker);
        while (at >= 0) {
          // A marker that ends inside `tail` was counted with the previous chunk.
          if (at + marker.length > tail.length) result.frames++;
          at = text.indexOf(marker, at + 1);
        }
        const lastAt = text.lastIndexOf(ID_LINE);
        const end = lastAt < 0 ? -1 : text.indexOf("\n", lastAt + ID_LINE.length);
        if (end >= 0) result.lastId = text.slice(lastAt + ID_LINE.length, end);
        tail = text.slice(-4096);
        if (result.frames >= until) {
          res.destroy();
          resolve(result);
        }
      });
      res.on("end", () => {
        // The id line of the very last frame may have been cut by the chunk boundary.
        const last = tail.lastIndexOf(ID_LINE);
        if (last >= 0) result.lastId = tail.slice(last + ID_LINE.length, tail.indexOf("\n", last + ID_LINE.length));
        resolve(result);
      });
      res.on("error", reject);
    });
    req.on("error", reject);
  });
}

function stall(url: string, opened: http.ClientRequest[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent: false }, (res) => {
      res.once("data", () => {
        res.pause();
        resolve();
      });
    });
    req.on("error", reject);
    opened.push(req);
  });
}

process.once("message", async (setup: Setup) => {
  if (setup.mode === "read") {
    const results = await Promise.all(Array.from({ length: setup.clients }, () => readAll(setup)));
    process.send?.({ type: "done", results });
    return;
  }
  const opened: http.ClientRequest[] = [];
  await Promise.all(Array.from({ length: setup.clients }, () => stall(setup.url, opened)));
  process.send?.({ type: "stalled" });
  process.once("message", () => {
    for (const req of opened) req.destroy();
    process.send?.({ type: "stopped" });
    process.disconnect();
  });
});
