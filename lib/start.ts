import { envelopeFrame, type Frame, snapshotFrame } from "./frames";
import type { ErrorContext } from "./options";
import {
  describeIssues,
  type Envelope,
  EnvelopeSchema,
  isTerminalStatus,
  type RunState,
  RunStateSchema,
} from "./schema";
import type { RunEventSource, RunSnapshot } from "./source";

/** How a new stream begins. */
export type StreamStart =
  | { kind: "frames"; frames: Frame[]; cursor: string | undefined }
  /** The per-run stream's run does not exist: 404. */
  | { kind: "missing" }
  /** The client already holds the run's `complete`: 204. */
  | { kind: "finished" };

/** What the start of a stream needs to know of its router. */
export interface StartContext {
  source: RunEventSource;
  compareIds: (a: string, b: string) => number;
  /** Reports an envelope or state the source gave that fails validation (it is skipped). */
  reject: (error: unknown, context: ErrorContext) => void;
}

async function collect(
  result: AsyncIterable<Envelope> | Envelope[] | null | Promise<Envelope[] | null>,
): Promise<Envelope[] | null> {
  const awaited = await result;
  if (awaited === null || Array.isArray(awaited)) return awaited;
  const out: Envelope[] = [];
  for await (const envelope of awaited) out.push(envelope);
  return out;
}

function validEnvelopes(ctx: StartContext, envelopes: readonly unknown[], runId: string | undefined): Frame[] {
  const frames: Frame[] = [];
  for (const candidate of envelopes) {
    const parsed = EnvelopeSchema.safeParse(candidate);
    if (parsed.success && (runId === undefined || parsed.data.runId === runId)) {
      frames.push(envelopeFrame(parsed.data));
    } else {
      const message = parsed.success
        ? `replay of run ${runId} gave an envelope of run ${parsed.data.runId}`
        : describeIssues(parsed.error);
      ctx.reject(new Error(`invalid envelope from replay: ${message}`), {
        phase: "replay",
        runId,
        envelope: candidate,
      });
    }
  }
  return frames;
}

function validState(ctx: StartContext, candidate: unknown, runId: string | undefined): RunState | undefined {
  const parsed = RunStateSchema.safeParse(candidate);
  if (parsed.success && (runId === undefined || parsed.data.id === runId)) return parsed.data;
  const message = parsed.success
    ? `snapshot of run ${runId} gave the state of run ${parsed.data.id}`
    : describeIssues(parsed.error);
  ctx.reject(new Error(`invalid run state from the source: ${message}`), {
    phase: "snapshot",
    runId,
    envelope: candidate,
  });
  return undefined;
}

async function readSnapshot(source: RunEventSource, runId?: string): Promise<RunSnapshot | undefined> {
  if (source.snapshot !== undefined) return source.snapshot(runId);
  if (runId === undefined) return { states: await source.listRuns() };
  const state = await source.getRun(runId);
  return state === undefined ? undefined : { states: [state] };
}

/** The frames a client resuming after `lastEventId` missed, or `null` when the source cannot tell. */
async function replayAfter(ctx: StartContext, lastEventId: string, runId?: string): Promise<StreamStart | null> {
  if (ctx.source.replay === undefined) return null;
  const replayed = await collect(ctx.source.replay(lastEventId, runId));
  if (replayed === null) return null;
  const frames = validEnvelopes(ctx, replayed, runId);
  const last = frames.length > 0 ? frames[frames.length - 1]?.id : undefined;
  return { kind: "frames", frames, cursor: last ?? lastEventId };
}

/**
 * How a per-run stream starts: the frames missed since `lastEventId` when the source can
 * replay them, otherwise a snapshot (`state`, plus `complete` for a finished run).
 * Called after the client joined the hub, so nothing announced meanwhile is lost.
 */
export async function startRun(
  ctx: StartContext,
  runId: string,
  lastEventId: string | undefined,
): Promise<StreamStart> {
  const { source } = ctx;
  if (lastEventId !== undefined) {
    const run = await source.getRun(runId);
    if (run === undefined) return { kind: "missing" };
    if (isTerminalStatus(run.status)) {
      // Only a finished run has a `complete` to compare with: active runs skip that round trip.
      const completion = source.getCompletion === undefined ? undefined : await source.getCompletion(runId);
      if (completion?.id !== undefined && ctx.compareIds(lastEventId, completion.id) >= 0) return { kind: "finished" };
    }
    const replayed = await replayAfter(ctx, lastEventId, runId);
    if (replayed?.kind === "frames") {
      // `complete` is a run's last envelope: a finished run whose missed frames lack it was already seen to the end.
      const seenToEnd = isTerminalStatus(run.status) && !replayed.frames.some((frame) => frame.type === "complete");
      return seenToEnd ? { kind: "finished" } : replayed;
    }
  }
  const snapshot = await readSnapshot(source, runId);
  const state = snapshot?.states[0] === undefined ? undefined : validState(ctx, snapshot.states[0], runId);
  if (snapshot === undefined || state === undefined) return { kind: "missing" };
  if (!isTerminalStatus(state.status)) {
    return { kind: "frames", frames: [snapshotFrame(state, snapshot.cursor)], cursor: snapshot.cursor };
  }
  // A finished run: its state, then its real `complete` (id included, so a reconnect gets 204).
  const completion = source.getCompletion === undefined ? undefined : await source.getCompletion(runId);
  const completeFrame =
    completion === undefined
      ? envelopeFrame({ type: "complete", runId, id: snapshot.cursor, data: state })
      : validEnvelopes(ctx, [completion], runId)[0];
  const frames = [snapshotFrame(state, undefined)];
  if (completeFrame !== undefined) frames.push(completeFrame);
  return { kind: "frames", frames, cursor: snapshot.cursor };
}

/**
 * How a global stream starts: the frames missed since `lastEventId`, or one snapshot `state`
 * per active run (the last one carrying the cursor, so a drop mid-snapshot resyncs).
 */
export async function startGlobal(ctx: StartContext, lastEventId: string | undefined): Promise<StreamStart> {
  if (lastEventId !== undefined) {
    const replayed = await replayAfter(ctx, lastEventId);
    if (replayed !== null) return replayed;
  }
  const snapshot = (await readSnapshot(ctx.source)) ?? { states: [] };
  const states: RunState[] = [];
  for (const candidate of snapshot.states) {
    const state = validState(ctx, candidate, undefined);
    if (state !== undefined) states.push(state);
  }
  const frames = states.map((state, i) => snapshotFrame(state, i === states.length - 1 ? snapshot.cursor : undefined));
  return { kind: "frames", frames, cursor: snapshot.cursor };
}
