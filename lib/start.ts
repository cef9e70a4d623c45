import type { FrameCache } from "./frame-cache";
import { envelopeFrame, type Frame, resyncFrame, snapshotFrame } from "./frames";
import type { LiveTail } from "./live-tail";
import type { ErrorContext } from "./options";
import type { RunTags } from "./run-tags";
import { ENVELOPE_ID_PATTERN, type Envelope, isTerminalStatus, type RunState } from "./schema";
import type { LogGap, LogPage, ResyncReason, RunEventSource, RunSnapshot } from "./source";
import type { SourceCheck } from "./source-check";
import type { View } from "./view";

/** Envelopes asked of a log per read, and snapshot states rendered per piece: small enough that one page never holds the event loop for long. */
export const LOG_PAGE_SIZE = 128;
/**
 * Envelopes of the first read, made while the request is handled: it only has to decide how
 * the stream starts (404, 204, resync); the rest is read page by page once it is streaming.
 */
const FIRST_PAGE_SIZE = 16;

/** What a new stream asks for. */
export interface StartRequest {
  /** The `Last-Event-ID` sent (header or `lastEventId`), as sent: one that is not a valid id is unknown. */
  lastEventId: string | undefined;
  /** `?from=start` (per-run streams only). */
  fromStart: boolean;
}

/** How a resume came out, for counters: served from the log, resynced, or a fresh start. */
export type StartOutcome = "replayed" | "resync" | "fresh";

/** One more page of a log, read after an id. */
export interface LogRead {
  frames: Frame[];
  /** Id of the last envelope read (valid or not): where the next read starts. */
  last: string | undefined;
  /** The page was full: there may be more. */
  full: boolean;
}

/** Reads on in a log after an id; `gap` when it no longer can, `gone` when the run was forgotten meanwhile. */
export type LogReader = (after: string) => Promise<LogRead | "gap" | "gone">;

/** What a stream writes before it goes live. */
export interface StreamPlan {
  /** Written first: a `resync` and snapshot, or the first page of the log. */
  head: Frame[];
  /** Then these pieces in order (a large global snapshot, rendered piece by piece). */
  pieces?: Iterator<Frame[]>;
  /** Present when the stream is served from a log: reads on after the last id written. */
  log?: LogReader;
  /** Whether the head's log page was full, so the log must be read on. */
  more: boolean;
  /** Id of the newest envelope the frames above reflect: live frames up to it are dropped. */
  cursor: string | undefined;
  outcome: StartOutcome;
  /** The head came from the router's memory of recent frames, not from the source's log. */
  held?: boolean;
}

/** How a new stream begins, decided before its head is written. */
export type StreamStart =
  | { kind: "stream"; plan: StreamPlan }
  /** The per-run stream's run does not exist: 404. */
  | { kind: "missing" }
  /** The client already holds the run's `complete`: 204. */
  | { kind: "finished" };

/** What the start of a stream needs of its router. */
export interface StartContext {
  source: RunEventSource;
  /** Frames of log entries, made once for every client that replays them. */
  frames: FrameCache;
  /** Runs' newest frames as received live: resumes from an id held there read no log. */
  tail: LiveTail;
  /** Reports a value the source gave that fails validation (it is skipped, and counted). */
  reject: (error: unknown, context: ErrorContext) => void;
  /** Runs' tags, for placing global frames in a client's view. */
  tags: RunTags;
  /** Checks the source's envelopes and states (see {@link sourceCheck}). */
  check: SourceCheck;
}

const MISSING: StreamStart = { kind: "missing" };
const FINISHED: StreamStart = { kind: "finished" };

function stream(plan: StreamPlan): StreamStart {
  return { kind: "stream", plan };
}

/**
 * A log entry's frame: from the cache when this entry was seen before, else validated and
 * serialized once, then cached. `undefined` (reported) when the source gave something that is
 * not an envelope of `runId`, or that cannot be serialized.
 */
function entryFrame(ctx: StartContext, candidate: unknown, runId: string | undefined): Frame | undefined {
  if (typeof candidate === "object" && candidate !== null) {
    const { id, runId: of } = candidate as { id?: unknown; runId?: unknown };
    if (typeof id === "string" && typeof of === "string" && (runId === undefined || of === runId)) {
      const cached = ctx.frames.get(of, id) ?? ctx.tail.get(of, id);
      if (cached !== undefined) return cached;
    }
  }
  const checked = ctx.check.envelope(candidate);
  let problem: string;
  if (!checked.ok) problem = checked.problem;
  else if (runId !== undefined && checked.value.runId !== runId) {
    problem = `the log of run ${runId} gave an envelope of run ${checked.value.runId}`;
  } else {
    try {
      const frame = envelopeFrame(checked.value);
      ctx.frames.set(frame);
      return frame;
    } catch (error) {
      problem = `its data cannot be serialized (${error instanceof Error ? error.message : String(error)})`;
    }
  }
  ctx.reject(new Error(`invalid envelope from the source's log: ${problem}`), {
    phase: "replay",
    runId,
    envelope: candidate,
  });
  return undefined;
}

function pageFrames(
  ctx: StartContext,
  envelopes: readonly unknown[],
  runId: string | undefined,
  limit: number,
): LogRead {
  const frames: Frame[] = [];
  let last: string | undefined;
  for (const candidate of envelopes) {
    const frame = entryFrame(ctx, candidate, runId);
    if (frame !== undefined) {
      frames.push(frame);
      // A state or complete of the global history tells its run's tags, saving a lookup.
      if (runId === undefined && frame.type !== "event") {
        ctx.tags.learnUnchecked(frame.runId, (candidate as { data: { tags?: unknown } }).data.tags);
      }
    }
    const id = (candidate as { id?: unknown } | null)?.id;
    if (typeof id === "string" && ENVELOPE_ID_PATTERN.test(id)) last = id;
  }
  return { frames, last, full: envelopes.length >= limit };
}

function isGap(page: LogPage | LogGap): page is LogGap {
  return "gap" in page && (page.gap === "trimmed" || page.gap === "unknown_id");
}

/** Reads one page of a log, checked: a malformed answer is reported and counts as a gap. */
async function readPage(
  ctx: StartContext,
  runId: string | undefined,
  after: string | undefined,
  limit: number,
): Promise<LogPage | LogGap | undefined> {
  const source = ctx.source;
  if (source.readLog === undefined) return undefined;
  const page = await source.readLog({ runId, after, limit });
  if (
    page === undefined ||
    (typeof page === "object" && page !== null && (isGap(page) || Array.isArray(page.envelopes)))
  )
    return page;
  ctx.reject(new Error("readLog answered neither a page, a gap nor undefined"), { phase: "replay", runId });
  return { gap: "unknown_id" };
}

/**
 * The frames of a global history page that a client's view holds: nothing of another run
 * reaches it. Runs whose tags are not known yet are looked up first (only when the view
 * goes by tags).
 */
async function inView(ctx: StartContext, view: View, read: LogRead): Promise<LogRead> {
  if (view.all || read.frames.length === 0) return read;
  if (view.needsTags) await ctx.tags.resolve(new Set(read.frames.map((frame) => frame.runId)));
  return { ...read, frames: read.frames.filter((frame) => view.includes(frame.runId, ctx.tags.get(frame.runId))) };
}

/** A page of a run's log taken from the live tail: the frames held after `after`. */
function heldPage(next: Frame[], after: string, limit: number): LogRead {
  return { frames: next, last: next.at(-1)?.id ?? after, full: next.length >= limit };
}

function logReader(ctx: StartContext, runId: string | undefined, view: View | undefined): LogReader {
  return async (after) => {
    const held =
      runId === undefined ? ctx.tail.globalAfter(after, LOG_PAGE_SIZE) : ctx.tail.after(runId, after, LOG_PAGE_SIZE);
    if (held !== undefined) {
      const read = heldPage(held.next, after, LOG_PAGE_SIZE);
      return view === undefined ? read : inView(ctx, view, read);
    }
    const page = await readPage(ctx, runId, after, LOG_PAGE_SIZE);
    if (page === undefined) return "gone";
    if (isGap(page)) return "gap";
    const read = pageFrames(ctx, page.envelopes, runId, LOG_PAGE_SIZE);
    return view === undefined ? read : inView(ctx, view, read);
  };
}

/**
 * A stream served from a log: its first page, then page after page from where it ends (of
 * the global history: only the frames of runs in the client's `view`).
 */
function fromLog(
  ctx: StartContext,
  runId: string | undefined,
  first: LogRead,
  after: string | undefined,
  view?: View,
  held = false,
): StreamStart {
  return stream({
    head: first.frames,
    log: logReader(ctx, runId, view),
    more: first.full,
    cursor: first.last ?? after,
    outcome: "replayed",
    held,
  });
}

function validState(ctx: StartContext, candidate: unknown, runId: string | undefined): RunState | undefined {
  const checked = ctx.check.state(candidate);
  if (checked.ok && (runId === undefined || checked.value.id === runId)) return checked.value;
  const message = checked.ok ? `snapshot of run ${runId} gave the state of run ${checked.value.id}` : checked.problem;
  ctx.reject(new Error(`invalid run state from the source: ${message}`), {
    phase: "snapshot",
    runId,
    envelope: candidate,
  });
  return undefined;
}

/**
 * A snapshot's cursor as it may go on the wire (an `id:` line, the skip point of live
 * frames): a valid envelope id, else reported and dropped, so a bad adapter can neither forge
 * frames through it nor make clients skip live envelopes.
 */
function validCursor(ctx: StartContext, cursor: unknown, runId: string | undefined): string | undefined {
  if (cursor === undefined) return undefined;
  if (typeof cursor === "string" && ENVELOPE_ID_PATTERN.test(cursor)) return cursor;
  const shown = typeof cursor === "string" ? JSON.stringify(cursor.slice(0, 64)) : typeof cursor;
  ctx.reject(new Error(`invalid snapshot cursor from the source (${shown}): the snapshot is sent without an id`), {
    phase: "snapshot",
    runId,
    envelope: cursor,
  });
  return undefined;
}

async function readSnapshot(source: RunEventSource, runId?: string): Promise<RunSnapshot | undefined> {
  if (source.snapshot !== undefined) return source.snapshot(runId);
  if (runId === undefined) return { states: await source.listRuns() };
  const state = await source.getRun(runId);
  return state === undefined ? undefined : { states: [state] };
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

/**
 * One run's snapshot: its state (with the cursor as id), and for a finished run its real
 * `complete` (id included, so a reconnect gets 204), or one made from the state when the
 * source has none or gives an invalid one. Preceded by `resync` when a resume failed.
 */
async function runSnapshot(ctx: StartContext, runId: string, resync: ResyncReason | undefined): Promise<StreamStart> {
  const { source } = ctx;
  const snapshot = await readSnapshot(source, runId);
  const state = snapshot?.states[0] === undefined ? undefined : validState(ctx, snapshot.states[0], runId);
  if (snapshot === undefined || state === undefined) return MISSING;
  const cursor = validCursor(ctx, snapshot.cursor, runId);
  const head = resync === undefined ? [] : [resyncFrame(resync, runId)];
  const outcome: StartOutcome = resync === undefined ? "fresh" : "resync";
  if (!isTerminalStatus(state.status)) {
    head.push(snapshotFrame(state, cursor));
    return stream({ head, more: false, cursor, outcome });
  }
  const completion = source.getCompletion === undefined ? undefined : await source.getCompletion(runId);
  let complete = completion === undefined ? undefined : entryFrame(ctx, completion, runId);
  if (complete !== undefined && complete.type !== "complete") {
    ctx.reject(new Error(`getCompletion of run ${runId} gave a ${complete.type} envelope, not its complete`), {
      phase: "snapshot",
      runId,
      envelope: completion,
    });
    complete = undefined;
  }
  complete ??= envelopeFrame({ type: "complete", runId, id: cursor, data: state });
  head.push(snapshotFrame(state, undefined), complete);
  return stream({ head, more: false, cursor, outcome });
}

/** A per-run resume from a source without `readLog`: `replay`, whole. */
async function replayRun(ctx: StartContext, runId: string, after: string): Promise<StreamStart> {
  const { source } = ctx;
  const run = await source.getRun(runId);
  if (run === undefined) return MISSING;
  const finished = isTerminalStatus(run.status);
  if (finished && source.getCompletion !== undefined) {
    // Only the very id of its `complete` is known to be at or past it: an id merely sorting
    // after it may be anyone's.
    if ((await source.getCompletion(runId))?.id === after) return FINISHED;
  }
  if (source.replay === undefined) return runSnapshot(ctx, runId, "unknown_id");
  const replayed = await collect(source.replay(after, runId));
  if (replayed === null) return runSnapshot(ctx, runId, "trimmed");
  const read = pageFrames(ctx, replayed, runId, Number.POSITIVE_INFINITY);
  // `complete` is a run's last envelope: a finished run whose missed frames lack it was seen to the end.
  if (finished && !read.frames.some((frame) => frame.type === "complete")) return FINISHED;
  return stream({ head: read.frames, more: false, cursor: read.last ?? after, outcome: "replayed" });
}

/**
 * How a per-run stream starts: with `Last-Event-ID`, what was missed since (from the run's
 * log); with `?from=start`, the run's whole log; otherwise, or when the log cannot serve it
 * exactly, a snapshot (preceded by `resync` for a failed resume). Called after the client
 * joined the hub, so nothing announced meanwhile is lost.
 */
export async function startRun(ctx: StartContext, runId: string, request: StartRequest): Promise<StreamStart> {
  const { source } = ctx;
  const after = request.lastEventId;
  if (after === undefined && !request.fromStart) return runSnapshot(ctx, runId, undefined);
  if (after !== undefined && !ENVELOPE_ID_PATTERN.test(after)) return runSnapshot(ctx, runId, "unknown_id");
  if (after !== undefined) {
    // Held live here: what follows is the log's own sequence, served without reading it.
    const held = ctx.tail.after(runId, after, FIRST_PAGE_SIZE);
    if (held !== undefined) {
      // Only finished runs are forgotten, and a forgotten run is gone whole: ask the source.
      if (held.ended && (await source.getRun(runId)) === undefined) {
        ctx.tail.forget(runId);
        return MISSING;
      }
      if (held.at.type === "complete") return FINISHED;
      return fromLog(ctx, runId, heldPage(held.next, after, FIRST_PAGE_SIZE), after, undefined, true);
    }
  }
  if (source.readLog === undefined) {
    return after === undefined ? runSnapshot(ctx, runId, "trimmed") : replayRun(ctx, runId, after);
  }
  const page = await readPage(ctx, runId, after, FIRST_PAGE_SIZE);
  if (page === undefined) return MISSING;
  if (isGap(page)) return runSnapshot(ctx, runId, page.gap);
  const read = pageFrames(ctx, page.envelopes, runId, FIRST_PAGE_SIZE);
  if (page.envelopes.length === 0) {
    if (after === undefined) return runSnapshot(ctx, runId, undefined);
    // Nothing missed. A finished run's `complete` is the last entry of its log, so the client has it.
    const run = await source.getRun(runId);
    if (run === undefined) return MISSING;
    if (isTerminalStatus(run.status)) return FINISHED;
  }
  return fromLog(ctx, runId, read, after);
}

/** The global snapshot's states as frames, rendered piece by piece as they are written; the last carries the cursor. */
function* snapshotPieces(
  ctx: StartContext,
  states: readonly unknown[],
  cursor: string | undefined,
): Generator<Frame[]> {
  for (let from = 0; from < states.length; from += LOG_PAGE_SIZE) {
    const piece: Frame[] = [];
    const to = Math.min(states.length, from + LOG_PAGE_SIZE);
    for (let i = from; i < to; i++) {
      const state = validState(ctx, states[i], undefined);
      if (state !== undefined) piece.push(snapshotFrame(state, i === states.length - 1 ? cursor : undefined));
    }
    yield piece;
  }
}

/** Whether a state (not validated yet: that happens as it is rendered) is of a run the view holds. */
function stateInView(view: View, state: unknown): boolean {
  if (typeof state !== "object" || state === null) return false;
  const { id, tags } = state as { id?: unknown; tags?: unknown };
  if (typeof id !== "string") return false;
  return view.includes(id, Array.isArray(tags) && tags.every((tag) => typeof tag === "string") ? tags : undefined);
}

async function globalSnapshot(ctx: StartContext, view: View, resync: ResyncReason | undefined): Promise<StreamStart> {
  const snapshot = (await readSnapshot(ctx.source)) ?? { states: [] };
  const cursor = validCursor(ctx, snapshot.cursor, undefined);
  let states: readonly unknown[] = Array.isArray(snapshot.states) ? snapshot.states : [];
  if (!view.all) states = states.filter((state) => stateInView(view, state));
  return stream({
    head: resync === undefined ? [] : [resyncFrame(resync, null)],
    pieces: snapshotPieces(ctx, states, cursor),
    more: false,
    cursor,
    outcome: resync === undefined ? "fresh" : "resync",
  });
}

/**
 * How a global stream starts: with `Last-Event-ID`, every run's frames missed since (from the
 * global history), else one snapshot `state` per active run (the last one carrying the
 * cursor), preceded by `resync` for a failed resume. Only runs in the client's `view`: the
 * snapshot, the replayed frames and the resync (which names no run) alike.
 */
export async function startGlobal(ctx: StartContext, request: StartRequest, view: View): Promise<StreamStart> {
  const { source } = ctx;
  const after = request.lastEventId;
  if (after === undefined) return globalSnapshot(ctx, view, undefined);
  if (!ENVELOPE_ID_PATTERN.test(after)) return globalSnapshot(ctx, view, "unknown_id");
  const held = ctx.tail.globalAfter(after, FIRST_PAGE_SIZE);
  if (held !== undefined) {
    // Held live here: the global history after it, served without reading it.
    const read = await inView(ctx, view, heldPage(held.next, after, FIRST_PAGE_SIZE));
    return fromLog(ctx, undefined, read, after, view, true);
  }
  if (source.readLog !== undefined) {
    const page = await readPage(ctx, undefined, after, FIRST_PAGE_SIZE);
    if (page === undefined) return globalSnapshot(ctx, view, "unknown_id");
    if (isGap(page)) return globalSnapshot(ctx, view, page.gap);
    const read = await inView(ctx, view, pageFrames(ctx, page.envelopes, undefined, FIRST_PAGE_SIZE));
    return fromLog(ctx, undefined, read, after, view);
  }
  if (source.replay === undefined) return globalSnapshot(ctx, view, "unknown_id");
  const replayed = await collect(source.replay(after));
  if (replayed === null) return globalSnapshot(ctx, view, "trimmed");
  const read = await inView(ctx, view, pageFrames(ctx, replayed, undefined, Number.POSITIVE_INFINITY));
  return stream({ head: read.frames, more: false, cursor: read.last ?? after, outcome: "replayed" });
}
