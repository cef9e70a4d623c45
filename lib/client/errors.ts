/**
 * {@link WatchError}, what runcast/client passes to `onError`.
 *
 * @packageDocumentation
 */

/** Why {@link WatchHandlers.onError} was called. */
export type WatchErrorCode =
  /** A frame was not valid JSON, failed the schema, or named another run; it was skipped. */
  | "invalid_frame"
  /** The `EventSource` gave up on the stream (an HTTP error, or an unknown reason in browsers); the watcher reopens it. */
  | "stream_failed"
  /** The server refused the stream for good (e.g. 404 `run_not_found`, 403); the watcher closed. */
  | "stream_refused"
  /** Nothing arrived for 3 heartbeat intervals: the connection was taken for dead, closed and reopened. */
  | "stream_stalled"
  /** The URL function threw or its promise rejected (the error is the `cause`); the watcher tries again. */
  | "url_failed";

/** An error passed to {@link WatchHandlers.onError}. */
export class WatchError extends Error {
  override readonly name = "WatchError";
  /** What went wrong. */
  readonly code: WatchErrorCode;
  /**
   * The HTTP status, when known: the `eventsource` package tells it; in browsers the watcher
   * asks the server again (see `WatchOptions.fetch`).
   */
  readonly status: number | undefined;
  /** The server's error code from its JSON error body (e.g. `run_not_found`), when the status probe read one. */
  readonly serverCode: string | undefined;
  /** The skipped frame, for `invalid_frame`. */
  readonly frame: { type: string; id: string | undefined; data: string } | undefined;

  constructor(
    code: WatchErrorCode,
    message: string,
    details: {
      status?: number;
      serverCode?: string;
      frame?: { type: string; id: string | undefined; data: string };
      cause?: unknown;
    } = {},
  ) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.code = code;
    this.status = details.status;
    this.serverCode = details.serverCode;
    this.frame = details.frame;
  }
}
