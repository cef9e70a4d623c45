import type { Envelope, EnvelopeType, RunState } from "./schema";
import type { ResyncReason } from "./source";

/**
 * What a frame's `event:` line names: an envelope type, `resync` (sent before a resume's fresh
 * snapshot), or `heartbeat` (for clients that ask for heartbeats as frames).
 */
export type FrameType = EnvelopeType | "resync" | "heartbeat";

/**
 * One envelope rendered as SSE bytes, once, plus what the fan-out needs to route and filter
 * it without parsing the text again.
 */
export interface Frame {
  readonly type: FrameType;
  /** The run the frame is about; `""` for the global stream's `resync`, which is about none. */
  readonly runId: string;
  /** Envelope id; absent for id-less snapshot frames and sources without ids. */
  readonly id: string | undefined;
  /** `data.type` of an `event` frame, for the `?types=` filter. */
  readonly eventType: string | undefined;
  /** The complete SSE frame: `event:`, optional `id:`, one `data:` line, blank line. */
  readonly text: string;
}

/**
 * Renders one frame. `JSON.stringify` escapes every CR and LF inside strings, so `data` is
 * always one line; `type`, `id` and run ids are validated against patterns that exclude
 * line breaks before they get here.
 */
function render(type: FrameType, id: string | undefined, data: unknown): string {
  return id === undefined
    ? `event: ${type}\ndata: ${JSON.stringify(data)}\n\n`
    : `event: ${type}\nid: ${id}\ndata: ${JSON.stringify(data)}\n\n`;
}

/** Serializes a validated envelope into a {@link Frame}. */
export function envelopeFrame(envelope: Envelope): Frame {
  return {
    type: envelope.type,
    runId: envelope.runId,
    id: envelope.id,
    eventType: envelope.type === "event" ? envelope.data.type : undefined,
    text: render(envelope.type, envelope.id, envelope.data),
  };
}

/** A snapshot `state` frame (initial or resync): the run's state, with the snapshot cursor as id when there is one. */
export function snapshotFrame(state: RunState, cursor: string | undefined): Frame {
  return { type: "state", runId: state.id, id: cursor, eventType: undefined, text: render("state", cursor, state) };
}

/**
 * The id-less frame that tells a resuming client it is not getting exactly what it missed,
 * and why; its fresh snapshot follows. The per-run stream names the run, the global stream
 * nothing else (so it says nothing about runs a client may not see).
 */
export function resyncFrame(reason: ResyncReason, runId: string | null): Frame {
  const data = runId === null ? { reason } : { reason, runId };
  return {
    type: "resync",
    runId: runId ?? "",
    id: undefined,
    eventType: undefined,
    text: render("resync", undefined, data),
  };
}

/**
 * The `retry:` field sent with the response head: one field line without a blank line of its
 * own, so it joins whatever block comes first (a frame, or a heartbeat followed by one).
 * Clients that dispatch a message at every blank line (@microsoft/fetch-event-source) would
 * otherwise see an empty message; spec parsers apply `retry` as they read the line.
 */
export function retryField(ms: number): string {
  return `retry: ${ms}\n`;
}

/**
 * The heartbeat: an SSE comment line, ignored by clients but keeping proxies and sockets
 * awake. No blank line of its own, for the same reason as {@link retryField}: the comment
 * becomes part of the next frame's block, which spec parsers skip.
 */
export const HEARTBEAT = ":\n";

/**
 * The heartbeat of a stream requested with `?heartbeat=event`: an id-less `heartbeat` frame
 * whose data gives the interval, so a page's `EventSource` (which never shows comments) can
 * tell a live but quiet stream from a dead connection, and learn how long silence may last.
 */
export function heartbeatEvent(intervalMs: number): string {
  return render("heartbeat", undefined, { intervalMs });
}

/**
 * `text` framed as one HTTP/1.1 chunk (`<hex byte length>\r\n<text>\r\n`), ready to be
 * written straight to the socket of a response that uses chunked transfer encoding.
 * `bytes` is `text`'s length in bytes (UTF-8), not in UTF-16 code units.
 */
export function httpChunk(text: string, bytes: number): string {
  return `${bytes.toString(16)}\r\n${text}\r\n`;
}

/** {@link HEARTBEAT} as an HTTP/1.1 chunk. */
export const HEARTBEAT_CHUNK = httpChunk(HEARTBEAT, HEARTBEAT.length);

/** Joins frames into one chunk. */
export function joinFrames(frames: readonly Frame[]): string {
  if (frames.length === 1) return (frames[0] as Frame).text;
  let text = "";
  for (const frame of frames) text += frame.text;
  return text;
}

/** One tick's frames for one channel, joined once and shared by every client that takes them as they are. */
export interface FrameBatch {
  readonly frames: readonly Frame[];
  /** The frames joined. */
  readonly chunk: string;
  /** `chunk`'s length in bytes. */
  readonly bytes: number;
  /**
   * `chunk` framed as one HTTP/1.1 chunk and encoded once, for clients written through their
   * socket: each of them is handed the same bytes, with no UTF-8 encoding per client.
   */
  readonly httpChunk: Buffer;
  /** The frames hold the channel's run's `complete`: per-run responses end after them. */
  readonly ends: boolean;
}
