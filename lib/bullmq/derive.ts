import { type Envelope, isValidRunId, type RunState } from "../schema";
import { envelopeId } from "./ids";

/** An entry of BullMQ's event stream: its id and its fields. */
export interface StreamEntry {
  id: string;
  fields: Map<string, string>;
}

/** What the derivation knows of one run (job) so far. */
interface RunFold {
  state: RunState;
  /** The run's log starts with its `added` entry (not trimmed away before it was read). */
  fromStart: boolean;
  /** Its `completed`/`failed` entry was seen: the terminal state, waiting for `runcast:done`. */
  final?: RunState;
  done: boolean;
  attempts: number;
}

/** Turns event-stream entries into envelopes, in order, the same way in every process. */
export class Derivation {
  readonly runs = new Map<string, RunFold>();

  constructor(
    /** The parent run of a job of this queue, when it is a flow child here. */
    private readonly parentOf: (jobId: string) => string | undefined,
    /** Told once per job id that is not a valid run id. */
    private readonly badId: (jobId: string) => void,
  ) {}

  /** The envelopes entry `entry` gives (none for entries that concern no run). */
  derive(entry: StreamEntry): Envelope[] {
    const event = entry.fields.get("event");
    const jobId = entry.fields.get("jobId");
    if (event === undefined || jobId === undefined) return [];
    if (!isValidRunId(jobId)) {
      this.badId(jobId);
      return [];
    }
    const out: Envelope[] = [];
    const push = (envelope: Omit<Envelope, "id">): void => {
      out.push({ ...envelope, id: envelopeId(entry.id, out.length) } as Envelope);
    };
    const ts = new Date(Number(entry.id.split("-")[0])).toISOString();
    let run = this.runs.get(jobId);
    if (run === undefined) {
      if (event === "removed" || event === "runcast:done") return [];
      const name = event === "added" ? entry.fields.get("name") : undefined;
      run = {
        state: { id: jobId, status: "pending", completed_units: 0, bullmq_state: "waiting", ...(name ? { name } : {}) },
        fromStart: event === "added",
        done: false,
        attempts: 0,
      };
      this.runs.set(jobId, run);
      push({ type: "state", runId: jobId, data: run.state });
      if (event === "added") return out;
    }
    if (run.done) return out;
    const change = (patch: Record<string, unknown>): void => {
      const current = run as RunFold;
      current.state = { ...current.state, ...patch } as RunState;
      push({ type: "state", runId: jobId, data: current.state });
    };
    if (run.final !== undefined && event !== "runcast:log" && event !== "runcast:done") return out;
    switch (event) {
      case "waiting":
        change({ status: "pending", bullmq_state: "waiting" });
        break;
      case "delayed":
        change({ status: "pending", bullmq_state: "delayed" });
        break;
      case "waiting-children":
        change({ status: "running", bullmq_state: "waiting-children" });
        break;
      case "stalled":
        change({ status: "pending", bullmq_state: "stalled" });
        break;
      case "active":
        run.attempts += 1;
        change({ status: "running", bullmq_state: "active", attempt: run.attempts });
        break;
      case "progress":
        change({ status: "running", ...progressFields(entry.fields.get("data")) });
        break;
      case "completed":
        run.final = {
          ...run.state,
          status: "completed",
          bullmq_state: "completed",
          return_value: parseJson(entry.fields.get("returnvalue")) ?? null,
        } as RunState;
        break;
      case "failed":
        run.final = {
          ...run.state,
          status: "failed",
          bullmq_state: "failed",
          failed_reason: entry.fields.get("failedReason") ?? "",
        } as RunState;
        break;
      case "runcast:log":
        push({
          type: "event",
          runId: jobId,
          data: {
            type: "job.log",
            run_id: jobId,
            ts,
            message: entry.fields.get("line") ?? "",
            index: Number(entry.fields.get("index")),
          },
        });
        break;
      case "runcast:done":
        if (run.final !== undefined) {
          run.state = run.final;
          run.done = true;
          push({ type: "complete", runId: jobId, data: run.final });
        }
        break;
    }
    this.#unit(event, jobId, entry, ts, out);
    return out;
  }

  /** A flow child's start and end, as unit events of its parent run. */
  #unit(event: string, jobId: string, entry: StreamEntry, ts: string, out: Envelope[]): void {
    const unitEvent = event === "active" ? "unit.started" : event === "completed" ? "unit.completed" : undefined;
    const type = unitEvent ?? (event === "failed" ? "unit.failed" : undefined);
    if (type === undefined) return;
    const parentId = this.parentOf(jobId);
    const parent = parentId === undefined ? undefined : this.runs.get(parentId);
    if (parentId === undefined || parent === undefined || parent.done || parent.final !== undefined) return;
    const data: Record<string, unknown> = { type, run_id: parentId, unit: jobId, ts };
    if (event === "failed") data.failed_reason = entry.fields.get("failedReason") ?? "";
    out.push({ type: "event", runId: parentId, id: envelopeId(entry.id, out.length), data } as Envelope);
    if (event === "completed") {
      parent.state = { ...parent.state, completed_units: parent.state.completed_units + 1 };
      out.push({ type: "state", runId: parentId, id: envelopeId(entry.id, out.length), data: parent.state });
    }
  }
}

function parseJson(text: string | undefined): unknown {
  if (text === undefined) return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

function count(value: unknown): number | undefined {
  return typeof value === "number" && Number.isSafeInteger(value) && value >= 0 ? value : undefined;
}

/** `job.updateProgress(n | object)` as state fields: `progress`, and the unit counts an object may carry. */
function progressFields(text: string | undefined): Record<string, unknown> {
  const progress = parseJson(text);
  const fields: Record<string, unknown> = { progress };
  if (typeof progress === "object" && progress !== null) {
    const completed = count((progress as Record<string, unknown>).completed_units);
    const total = count((progress as Record<string, unknown>).total_units);
    if (completed !== undefined) fields.completed_units = completed;
    if (total !== undefined) fields.total_units = total;
  }
  return fields;
}
