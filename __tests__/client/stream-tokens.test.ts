import { SignJWT } from "jose";
import { watchAll } from "../../lib/client";
import { MemoryRunSource } from "../../lib/index";
import { eventually, serve, type TestServer } from "../helpers/server";
import { Recorder, trackedEventSource } from "./harness";

const SECRET = "client-token-secret-of-at-least-32-bytes";

/** A token of `seconds` lifetime for `tags`, signed by hand so it can be short. */
function token(tags: string[], seconds: number): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ tags, exp: now + seconds })
    .setProtectedHeader({ alg: "HS256" })
    .sign(new TextEncoder().encode(SECRET));
}

describe("runcast/client with stream tokens", () => {
  let t: TestServer;
  let source: MemoryRunSource;
  let watcher: { close(): void } | undefined;

  beforeEach(async () => {
    source = new MemoryRunSource();
    source.createRun({ id: "web1", tags: ["team:web"] });
    source.createRun({ id: "ops1", tags: ["team:ops"] });
    t = await serve(source, { tokens: { secret: SECRET }, retryMs: 20 });
  });
  afterEach(async () => {
    watcher?.close();
    await t.close();
  });

  it("a stream ended by its token's expiry resumes with a fresh token from the url function, losing nothing", async () => {
    const minted: string[] = [];
    const rec = new Recorder();
    watcher = watchAll(
      async () => {
        const fresh = await token(["team:web"], 2);
        minted.push(fresh);
        return `${t.url}/api/stream?token=${fresh}`;
      },
      rec.all(),
      { ...trackedEventSource(), retryMs: 10, tags: ["team:web", "team:ops"] },
    );
    await eventually(() => rec.states.length >= 1, "the snapshot");
    for (let n = 0; n < 3; n++) source.recordEvent("web1", { type: "unit.progress", n });
    await eventually(() => rec.events.length === 3, "the first events");
    // The first token expires: the server ends the stream, the client asks for a new URL.
    await eventually(() => minted.length >= 2, "a reconnect with a fresh token", 5000);
    for (let n = 3; n < 6; n++) source.recordEvent("web1", { type: "unit.progress", n });
    source.recordEvent("ops1", { type: "unit.progress", n: 99 });
    await eventually(() => rec.events.length === 6, "the events written across the reconnect");
    expect(rec.ns).toEqual([0, 1, 2, 3, 4, 5]);
    expect(rec.resyncs).toEqual([]);
    expect(rec.errors).toEqual([]);
    expect(new Set(minted).size).toBe(minted.length);
  });
});
