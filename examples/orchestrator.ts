/**
 * A simulated job daemon: each run deploys a handful of services ("units"), a few at a
 * time, with varied durations and the occasional failure. It only writes to its
 * MemoryRunSource; runcast turns those writes into the streams the dashboard watches.
 */
import type { MemoryRunSource, RunState } from "../lib/index"; // in your app: from "runcast"

/** The teams runs belong to, as tags (`team:web`, ...). */
export const TEAMS = ["team:web", "team:payments", "team:data"];

/** The services a run may deploy. */
export const SERVICES = [
  "api-gateway",
  "auth-service",
  "billing",
  "checkout",
  "email-worker",
  "image-resizer",
  "inventory",
  "notifications",
  "payments",
  "reporting",
  "scheduler",
  "search-indexer",
  "user-profile",
] as const;

/** What a unit can be doing; the run's state carries one per unit, so a snapshot shows them all. */
export type UnitStatus = "pending" | "running" | "completed" | "failed" | "skipped";

/** Why a unit fails, picked at random. */
const FAILURES = ["health check timed out", "image pull failed", "migration lock held", "readiness probe failed"];

/** Options of {@link Orchestrator}. */
export interface OrchestratorOptions {
  /** Multiplies every delay: 1 is real time (units take 0.6 to 4 s), 0.01 is a hundred times faster. @default 1 */
  timeScale?: number;
  /** Chance that a unit fails. @default 0.07 */
  failureRate?: number;
  /** Units deployed at the same time within a run. @default 2 */
  concurrency?: number;
  /** Source of randomness, for reproducible runs. @default Math.random */
  random?: () => number;
}

interface ActiveRun {
  id: string;
  queue: string[];
  units: Record<string, UnitStatus>;
  running: number;
  completed: number;
  failure: string | undefined;
}

/**
 * Starts runs on a {@link MemoryRunSource} and plays them out with timers. `startRun` starts
 * one; `autostart` keeps a few going; `stop` cancels every timer (runs stay where they were).
 */
export class Orchestrator {
  readonly source: MemoryRunSource;
  readonly #timeScale: number;
  readonly #failureRate: number;
  readonly #concurrency: number;
  readonly #random: () => number;
  readonly #timers = new Set<ReturnType<typeof setTimeout>>();
  /** Ids differ between processes, so a page that outlives a restart never mixes two runs up. */
  readonly #prefix = Date.now().toString(36).slice(-4);
  #seq = 0;
  #autostart: ReturnType<typeof setInterval> | undefined;

  constructor(source: MemoryRunSource, options: OrchestratorOptions = {}) {
    this.source = source;
    this.#timeScale = options.timeScale ?? 1;
    this.#failureRate = options.failureRate ?? 0.07;
    this.#concurrency = options.concurrency ?? 2;
    this.#random = options.random ?? Math.random;
  }

  /** Starts a run of `units` services (a random pick of 4 to 8 by default) and returns its first state. */
  startRun(units: readonly string[] = this.#pickServices()): RunState {
    this.#seq += 1;
    const id = `run-${this.#prefix}-${this.#seq}`;
    const run: ActiveRun = {
      id,
      queue: [...units],
      units: Object.fromEntries(units.map((unit) => [unit, "pending" as const])),
      running: 0,
      completed: 0,
      failure: undefined,
    };
    // Extra fields (name, units, created_at) travel with the state to every client. The tags
    // say whose run it is: a page can watch one team's runs only (`?tags=`).
    const state = this.source.createRun({
      id,
      name: `Deploy #${this.#seq}`,
      tags: [TEAMS[this.#seq % TEAMS.length] as string],
      total_units: units.length,
      units: { ...run.units },
      created_at: new Date().toISOString(),
    });
    this.#after(200 + this.#random() * 600, () => {
      this.source.updateRun(id, { status: "running", started_at: new Date().toISOString() });
      this.#fill(run);
    });
    return state;
  }

  /** Keeps runs coming: every `everyMs`, starts one unless `maxActive` are already going. */
  autostart(everyMs = 2_500, maxActive = 4): void {
    if (this.#autostart !== undefined) return;
    this.startRun();
    this.#autostart = setInterval(() => {
      if (this.source.listRuns().length < maxActive) this.startRun();
    }, everyMs * this.#timeScale);
  }

  /** Cancels every timer: nothing more is written. */
  stop(): void {
    if (this.#autostart !== undefined) clearInterval(this.#autostart);
    this.#autostart = undefined;
    for (const timer of this.#timers) clearTimeout(timer);
    this.#timers.clear();
  }

  #pickServices(): string[] {
    const pool: string[] = [...SERVICES];
    const count = 4 + Math.floor(this.#random() * 5);
    const picked: string[] = [];
    while (picked.length < count && pool.length > 0) {
      picked.push(pool.splice(Math.floor(this.#random() * pool.length), 1)[0] as string);
    }
    return picked;
  }

  /** Starts queued units until `concurrency` run at once; finishes the run when nothing is left. */
  #fill(run: ActiveRun): void {
    while (run.failure === undefined && run.running < this.#concurrency && run.queue.length > 0) {
      this.#startUnit(run, run.queue.shift() as string);
    }
    if (run.running > 0) return;
    if (run.failure !== undefined) {
      // Units that never started are skipped; the run ends failed.
      for (const unit of run.queue) run.units[unit] = "skipped";
      this.source.completeRun(run.id, {
        status: "failed",
        completed_units: run.completed,
        units: { ...run.units },
        error: run.failure,
        finished_at: new Date().toISOString(),
      });
    } else if (run.queue.length === 0) {
      this.source.completeRun(run.id, {
        status: "completed",
        completed_units: run.completed,
        units: { ...run.units },
        finished_at: new Date().toISOString(),
      });
    }
  }

  #startUnit(run: ActiveRun, unit: string): void {
    run.running += 1;
    run.units[unit] = "running";
    this.source.recordEvent(run.id, { type: "unit.started", unit });
    this.source.updateRun(run.id, { units: { ...run.units } });
    const durationMs = Math.round(600 + this.#random() * 3_400);
    const fails = this.#random() < this.#failureRate;
    this.#after(durationMs, () => {
      run.running -= 1;
      if (fails) {
        const error = FAILURES[Math.floor(this.#random() * FAILURES.length)] as string;
        run.units[unit] = "failed";
        run.failure ??= `${unit}: ${error}`;
        this.source.recordEvent(run.id, { type: "unit.failed", unit, error });
        this.source.updateRun(run.id, { units: { ...run.units } });
      } else {
        run.completed += 1;
        run.units[unit] = "completed";
        this.source.recordEvent(run.id, { type: "unit.completed", unit, duration_ms: durationMs });
        this.source.updateRun(run.id, { completed_units: run.completed, units: { ...run.units } });
      }
      this.#fill(run);
    });
  }

  #after(ms: number, work: () => void): void {
    const timer = setTimeout(() => {
      this.#timers.delete(timer);
      work();
    }, ms * this.#timeScale);
    this.#timers.add(timer);
  }
}
