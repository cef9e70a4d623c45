import request from "supertest";
import { createExample, type Example } from "../../examples/app";
import type { Envelope } from "../../lib/index";

/** Resolves with every envelope of `runId` once its `complete` has been announced. */
function playedOut(example: Example, runId: string): Promise<Envelope[]> {
  return new Promise((resolve) => {
    const seen: Envelope[] = [];
    const stop = example.source.subscribe((envelope) => {
      if (envelope.runId !== runId) return;
      seen.push(envelope);
      if (envelope.type === "complete") {
        stop();
        resolve(seen);
      }
    });
  });
}

describe("the example daemon", () => {
  let example: Example;
  afterEach(() => example.close());

  it("plays a run out: each unit started then completed, completed_units counting up, then complete", async () => {
    example = createExample({ orchestrator: { timeScale: 0.001, failureRate: 0 } });
    const run = example.orchestrator.startRun(["auth-service", "billing", "checkout"]);
    const envelopes = await playedOut(example, run.id);

    const events = envelopes.filter((e) => e.type === "event").map((e) => `${e.data.type} ${e.data.unit}`);
    expect(events.filter((e) => e.startsWith("unit.started")).sort()).toEqual([
      "unit.started auth-service",
      "unit.started billing",
      "unit.started checkout",
    ]);
    expect(events.filter((e) => e.startsWith("unit.completed"))).toHaveLength(3);
    for (const unit of ["auth-service", "billing", "checkout"]) {
      expect(events.indexOf(`unit.started ${unit}`)).toBeLessThan(events.indexOf(`unit.completed ${unit}`));
    }
    const progress = envelopes.filter((e) => e.type === "state").map((e) => e.data.completed_units);
    expect(progress).toEqual([...progress].sort((a, b) => a - b));
    const final = envelopes[envelopes.length - 1];
    expect(final?.data).toMatchObject({
      status: "completed",
      completed_units: 3,
      total_units: 3,
      units: { "auth-service": "completed", billing: "completed", checkout: "completed" },
    });
  });

  it("fails a run when a unit fails: units never started are skipped", async () => {
    example = createExample({ orchestrator: { timeScale: 0.001, failureRate: 1, concurrency: 1 } });
    const run = example.orchestrator.startRun(["auth-service", "billing", "checkout"]);
    const envelopes = await playedOut(example, run.id);

    const events = envelopes.filter((e) => e.type === "event").map((e) => `${e.data.type} ${e.data.unit}`);
    expect(events).toEqual(["unit.started auth-service", "unit.failed auth-service"]);
    expect(envelopes[envelopes.length - 1]?.data).toMatchObject({
      status: "failed",
      completed_units: 0,
      units: { "auth-service": "failed", billing: "skipped", checkout: "skipped" },
      error: expect.stringMatching(/^auth-service: /),
    });
  });

  it("serves a JSON API: GET /api/runs lists recent runs newest first, POST /api/runs starts one", async () => {
    example = createExample({ orchestrator: { timeScale: 1_000 } });
    const first = example.orchestrator.startRun(["billing"]);
    const created = await request(example.app)
      .post("/api/runs")
      .send({ units: ["auth-service", "checkout"] });
    expect(created.status).toBe(201);
    expect(created.body.run).toMatchObject({ status: "pending", total_units: 2, completed_units: 0 });

    const listed = await request(example.app).get("/api/runs");
    expect(listed.status).toBe(200);
    expect(listed.body.runs.map((run: { id: string }) => run.id)).toEqual([created.body.run.id, first.id]);

    const refused = await request(example.app)
      .post("/api/runs")
      .send({ units: ["no-such-service"] });
    expect(refused.status).toBe(400);
    expect(refused.body.error.code).toBe("invalid_units");
  });

  it("serves the page and runcast/client's browser build", async () => {
    example = createExample();
    const page = await request(example.app).get("/");
    expect(page.status).toBe(200);
    expect(page.text).toContain('<script type="module" src="/dashboard.mjs">');
    const client = await request(example.app).get("/runcast/client.js");
    expect(client.status).toBe(200);
    expect(client.headers["content-type"]).toMatch(/^text\/javascript/);
  });
});
