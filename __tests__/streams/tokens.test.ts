import { SignJWT } from "jose";
import request from "supertest";
import { createStreamToken, MemoryRunSource, sseRouter } from "../../lib/index";
import { eventually, serve, type TestServer } from "../helpers/server";
import { type SseFrame, SseStream } from "../helpers/sse";

const SECRET = "a-test-secret-of-at-least-32-bytes!";
const key = new TextEncoder().encode(SECRET);

function runOf(frame: SseFrame): unknown {
  return frame.event === "event" ? frame.json.run_id : frame.json.id;
}

/** A token signed by hand, for the cases `createStreamToken` would never make. */
function sign(payload: Record<string, unknown>, alg = "HS256", secret: Uint8Array = key): Promise<string> {
  return new SignJWT(payload).setProtectedHeader({ alg }).sign(secret);
}

const now = (): number => Math.floor(Date.now() / 1000);

function b64(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString("base64url");
}

describe("stream tokens", () => {
  let source: MemoryRunSource;
  let t: TestServer;

  beforeEach(async () => {
    source = new MemoryRunSource();
    source.createRun({ id: "web1", tags: ["team:web"] });
    source.createRun({ id: "ops1", tags: ["team:ops"] });
    t = await serve(source, { tokens: { secret: SECRET } });
  });
  afterEach(() => t.close());

  it("refuses secrets under 32 bytes when the router is made, with invalid_option", () => {
    for (const secret of ["short", "x".repeat(31), new Uint8Array(16), 42]) {
      expect(() => sseRouter(source, { tokens: { secret: secret as string } })).toThrow(
        expect.objectContaining({ code: "invalid_option" }),
      );
    }
    expect(() => sseRouter(source, { tokens: { secret: "é".repeat(16) } })).not.toThrow();
  });

  it("createStreamToken makes a standard HS256 JWT: tags and runs top level beside iat, exp and a unique jti", async () => {
    const token = await createStreamToken(SECRET, { tags: ["team:web"], runs: ["r1"], expiresIn: "15m" });
    const [header, payload] = token
      .split(".")
      .slice(0, 2)
      .map((part) => JSON.parse(Buffer.from(part, "base64url").toString()));
    expect(header).toEqual({ alg: "HS256", typ: "JWT" });
    expect(payload).toEqual({
      tags: ["team:web"],
      runs: ["r1"],
      iat: expect.any(Number),
      exp: payload.iat + 900,
      jti: expect.stringMatching(/^[0-9a-f-]{36}$/),
    });
    const seconds = await createStreamToken(SECRET, { expiresIn: 60 });
    const again = await createStreamToken(SECRET, { expiresIn: 60 });
    const claims = JSON.parse(Buffer.from(seconds.split(".")[1] as string, "base64url").toString());
    expect(claims.exp - claims.iat).toBe(60);
    // Minted in the same second for the same scope, still two tokens.
    expect(again).not.toBe(seconds);
    expect(claims).not.toHaveProperty("tags");
    const refused = [
      () => createStreamToken("short", { expiresIn: 60 }),
      () => createStreamToken(SECRET, { expiresIn: 0 }),
      () => createStreamToken(SECRET, { expiresIn: "soon" }),
      () => createStreamToken(SECRET, { tags: undefined, expiresIn: 60 }),
      () => createStreamToken(SECRET, { tags: ["bad tag"], expiresIn: 60 }),
      () =>
        createStreamToken(SECRET, {
          runs: Array.from({ length: 400 }, (_, i) => `run-${i}-${"x".repeat(20)}`),
          expiresIn: 60,
        }),
    ];
    for (const attempt of refused) await expect(attempt()).rejects.toMatchObject({ code: "invalid_option" });
  });

  it("a valid token opens the global stream, from ?token= or Authorization: Bearer, scoped to its claims", async () => {
    const token = await createStreamToken(SECRET, { tags: ["team:web"], expiresIn: "5m" });
    const byQuery = await SseStream.open(`${t.url}/api/stream?token=${token}`);
    const byHeader = await SseStream.open(`${t.url}/api/stream`, { Authorization: `Bearer ${token}` });
    await Promise.all([byQuery.frameCount(1), byHeader.frameCount(1)]);
    source.recordEvent("ops1", { type: "unit.progress" });
    source.recordEvent("web1", { type: "unit.progress" });
    await Promise.all([byQuery.frameCount(2), byHeader.frameCount(2)]);
    for (const s of [byQuery, byHeader]) {
      expect(s.status).toBe(200);
      expect(s.frames.map(runOf)).toEqual(["web1", "web1"]);
      expect(s.raw).not.toMatch(/ops1/);
      s.close();
    }
    await request(t.url).get(`/api/runs/ops1/stream?token=${token}`).expect(403);
    const unscoped = await createStreamToken(SECRET, { expiresIn: 60 });
    const all = await SseStream.open(`${t.url}/api/stream?token=${unscoped}`);
    await all.frameCount(2);
    all.close();
  });

  it("each bad token gets its documented 401 and code, never echoed, and disturbs nothing else", async () => {
    const good = await createStreamToken(SECRET, { runs: ["web1"], expiresIn: "5m" });
    const watcher = await SseStream.open(`${t.url}/api/runs/web1/stream?token=${good}`);
    await watcher.frameCount(1);

    const [header, payload, signature] = good.split(".") as [string, string, string];
    const claims = JSON.parse(Buffer.from(payload, "base64url").toString());
    const cases: Array<[string, string | undefined, "invalid_token" | "token_expired"]> = [
      ["missing", undefined, "invalid_token"],
      ["expired", await sign({ runs: ["web1"], iat: now() - 120, exp: now() - 60 }), "token_expired"],
      ["not yet valid", await sign({ runs: ["web1"], nbf: now() + 600, exp: now() + 900 }), "invalid_token"],
      ["tampered payload", `${header}.${b64({ ...claims, runs: ["web1", "ops1"] })}.${signature}`, "invalid_token"],
      [
        "wrong secret",
        await sign({ exp: now() + 60 }, "HS256", new TextEncoder().encode("y".repeat(40))),
        "invalid_token",
      ],
      ["alg none", `${b64({ alg: "none", typ: "JWT" })}.${b64({ exp: now() + 60 })}.`, "invalid_token"],
      ["HS512 with the same secret", await sign({ exp: now() + 60 }, "HS512"), "invalid_token"],
      ["garbage", "not-a-token", "invalid_token"],
      ["malformed claims", await sign({ tags: "team:web", exp: now() + 60 }), "invalid_token"],
      ["no expiry", await sign({ tags: ["team:web"] }), "invalid_token"],
      ["empty", "", "invalid_token"],
      [
        "over-long (8 KB+)",
        await sign({ runs: Array.from({ length: 700 }, (_, i) => `run-${i}`), exp: now() + 60 }),
        "invalid_token",
      ],
    ];
    expect((cases.at(-1)?.[1] ?? "").length).toBeGreaterThan(8 * 1024);
    for (const [what, token, code] of cases) {
      for (const via of ["query", "header"] as const) {
        if (token === undefined && via === "header") continue;
        const req =
          via === "query"
            ? request(t.url).get(`/api/stream${token === undefined ? "" : `?token=${encodeURIComponent(token)}`}`)
            : request(t.url).get("/api/stream").set("Authorization", `Bearer ${token}`);
        const res = await req;
        expect({ what, via, status: res.status, code: res.body.error?.code }).toEqual({ what, via, status: 401, code });
        expect(res.headers["www-authenticate"]).toBe("Bearer");
        if (token !== undefined && token !== "") {
          for (const part of token.split(".").filter((p) => p.length > 8)) expect(res.text).not.toContain(part);
        }
      }
    }
    // The stream opened before all that is untouched.
    source.recordEvent("web1", { type: "unit.progress" });
    await watcher.frameCount(2);
    expect(watcher.ended).toBe(false);
    watcher.close();
  });

  it("authorize still runs after the token, and the two scopes meet", async () => {
    const u = await serve(source, {
      tokens: { secret: SECRET },
      authorize: (req) => (req.get("x-deny") === "1" ? false : { runs: ["web1", "ops1"] }),
    });
    try {
      const token = await createStreamToken(SECRET, { tags: ["team:web", "team:ops"], expiresIn: 60 });
      await request(u.url).get(`/api/stream?token=${token}`).set("x-deny", "1").expect(403);
      const narrow = await createStreamToken(SECRET, { tags: ["team:ops"], expiresIn: 60 });
      const s = await SseStream.open(`${u.url}/api/stream?token=${narrow}`);
      await s.frameCount(1);
      expect(s.frames.map(runOf)).toEqual(["ops1"]);
      await request(u.url).get(`/api/runs/web1/stream?token=${narrow}`).expect(403);
      s.close();
    } finally {
      await u.close();
    }
  });

  it("a live stream ends when its token expires, and a resume with a fresh token loses nothing", async () => {
    const token = await sign({ tags: ["team:web"], exp: now() + 2 });
    const first = await SseStream.open(`${t.url}/api/stream?token=${token}`);
    await first.frameCount(1);
    for (let i = 0; i < 3; i++) source.recordEvent("web1", { type: "unit.progress", n: i });
    await first.frameCount(4);
    await first.end(4000);
    expect(t.router.stats().clientsEnded.token_expiry).toBe(1);
    // Written while the client is away, with only the expired token in hand.
    for (let i = 3; i < 6; i++) source.recordEvent("web1", { type: "unit.progress", n: i });
    const stale = await request(t.url).get(`/api/stream?token=${token}`);
    expect(stale.status).toBe(401);
    expect(stale.body.error.code).toBe("token_expired");

    const fresh = await createStreamToken(SECRET, { tags: ["team:web"], expiresIn: "5m" });
    const last = first.frames.at(-1)?.id as string;
    const second = await SseStream.open(`${t.url}/api/stream?token=${fresh}`, { "Last-Event-ID": last });
    source.recordEvent("web1", { type: "unit.progress", n: 6 });
    await second.frameCount(4);
    const ns = [...first.frames, ...second.frames].filter((f) => f.event === "event").map((f) => f.json.n);
    expect(ns).toEqual([0, 1, 2, 3, 4, 5, 6]);
    expect(second.of("resync")).toEqual([]);
    second.close();
  });
});

describe("check order: 400, 401, 403, 503, 404 in every combination", () => {
  let source: MemoryRunSource;
  let open: TestServer;
  let full: TestServer;
  let holder: SseStream;

  beforeAll(async () => {
    source = new MemoryRunSource();
    source.createRun({ id: "r1", tags: ["team:web"] });
    const options = {
      tokens: { secret: SECRET },
      authorize: (req: import("express").Request) => req.get("x-deny") !== "1",
    };
    open = await serve(source, options);
    full = await serve(source, { ...options, maxClients: 1 });
    const token = await createStreamToken(SECRET, { expiresIn: "5m" });
    holder = await SseStream.open(`${full.url}/api/stream?token=${token}`);
    await holder.frameCount(1);
  });
  afterAll(async () => {
    holder.close();
    await Promise.all([open.close(), full.close()]);
  });

  it("a refused client learns nothing beyond the first check it fails", async () => {
    const good = await createStreamToken(SECRET, { expiresIn: "5m" });
    const seen: string[] = [];
    for (let mask = 0; mask < 32; mask++) {
      const bad400 = (mask & 1) !== 0;
      const bad401 = (mask & 2) !== 0;
      const bad403 = (mask & 4) !== 0;
      const bad503 = (mask & 8) !== 0;
      const bad404 = (mask & 16) !== 0;
      const server = bad503 ? full : open;
      const run = bad404 ? "ghost" : "r1";
      const query = [bad400 ? "types=NOT_A_TYPE" : "", bad401 ? "" : `token=${good}`].filter(Boolean).join("&");
      // The status line only: a 200 is a stream, closed at once.
      const s = await SseStream.open(`${server.url}/api/runs/${run}/stream?${query}`, { "x-deny": bad403 ? "1" : "0" });
      s.close();
      const expected = bad400 ? 400 : bad401 ? 401 : bad403 ? 403 : bad503 ? 503 : bad404 ? 404 : 200;
      expect({ mask, status: s.status }).toEqual({ mask, status: expected });
      seen.push(String(s.status));
    }
    expect(new Set(seen)).toEqual(new Set(["400", "401", "403", "503", "404", "200"]));
    await eventually(() => open.router.clientCount() === 0, "the 200 streams to close");
  });

  it("under a token's tags scope a missing run is 403 like an out-of-scope one, under a runs scope 404", async () => {
    const tags = await createStreamToken(SECRET, { tags: ["team:web"], expiresIn: 60 });
    await request(open.url).get(`/api/runs/ghost/stream?token=${tags}`).expect(403);
    const runs = await createStreamToken(SECRET, { runs: ["ghost"], expiresIn: 60 });
    await request(open.url).get(`/api/runs/ghost/stream?token=${runs}`).expect(404);
    await request(open.url).get(`/api/runs/r1/stream?token=${runs}`).expect(403);
    await request(full.url).get(`/api/runs/ghost/stream?token=${tags}`).expect(403);
  });
});

describe("the example app's token endpoint", () => {
  it("POST mints a short-lived token of the session's teams the page opens the stream with; without one the stream is 401", async () => {
    const { createExample } = await import("../../examples/app");
    const { TEAMS } = await import("../../examples/orchestrator");
    const example = createExample({
      tokenSecret: SECRET,
      tokenLifetimeSeconds: 90,
      orchestrator: { timeScale: 1_000 },
    });
    const server = example.app.listen(0, "127.0.0.1");
    await new Promise<void>((resolve) => server.once("listening", () => resolve()));
    const base = `http://127.0.0.1:${(server.address() as import("node:net").AddressInfo).port}`;
    try {
      const minted = await request(base).post("/api/stream-token").expect(200);
      expect(minted.headers["cache-control"]).toBe("no-store");
      expect(minted.headers["content-type"]).toMatch(/^application\/json/);
      const claims = JSON.parse(Buffer.from(minted.body.token.split(".")[1], "base64url").toString());
      expect(claims).toEqual({
        tags: TEAMS,
        iat: expect.any(Number),
        exp: expect.any(Number),
        jti: expect.any(String),
      });
      expect(claims.exp - claims.iat).toBe(90);
      // Handed out by POST only: a link, a prefetch or an <img> cannot fetch one.
      await request(base).get("/api/stream-token").expect(404);
      await request(base).get("/api/stream").expect(401);
      const s = await SseStream.open(`${base}/api/stream?token=${minted.body.token}`);
      expect(s.status).toBe(200);
      s.close();
    } finally {
      await example.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});
