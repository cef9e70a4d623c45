/**
 * The error codes runcast uses: in JSON error bodies (`{"error":{"code","message"}}`) and
 * on the {@link RuncastError}s its API throws.
 */
export type RuncastErrorCode =
  | "invalid_run_id"
  | "invalid_query"
  | "forbidden"
  | "too_many_clients"
  | "unavailable"
  | "run_not_found"
  | "internal_error"
  | "invalid_envelope"
  | "invalid_event"
  | "invalid_state"
  | "run_exists"
  | "run_finished"
  | "invalid_option"
  | "tags_fixed"
  | "invalid_token"
  | "token_expired";

/** An error with a stable, documented {@link RuncastErrorCode}. */
export class RuncastError extends Error {
  override readonly name = "RuncastError";
  /** Stable machine-readable code. */
  readonly code: RuncastErrorCode;

  constructor(code: RuncastErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }

  /**
   * `runcast`, `runcast/redis` and `runcast/client` are separate bundles, each with its own
   * copy of this class: `instanceof` recognises a RuncastError from any of them by its shape.
   */
  static override [Symbol.hasInstance](value: unknown): boolean {
    return (
      value instanceof Error && value.name === "RuncastError" && typeof (value as { code?: unknown }).code === "string"
    );
  }
}
