export { RuncastError, type RuncastErrorCode } from "./errors";
export {
  type CustomStateFields,
  DEFAULT_HISTORY_SIZE,
  DEFAULT_MAX_FINISHED_RUNS,
  type EventInput,
  MemoryRunSource,
  type MemoryRunSourceOptions,
  type RunCompletion,
  type RunInit,
  type RunPatch,
} from "./memory";
export type { CloseOptions, ErrorContext, ErrorPhase, SseRouterOptions } from "./options";
export { DEFAULTS as SSE_ROUTER_DEFAULTS } from "./options";
export { type SseRouter, type SseRouterStats, sseRouter } from "./router";
export {
  ENVELOPE_ID_PATTERN,
  type Envelope,
  EnvelopeIdSchema,
  EnvelopeSchema,
  type EnvelopeType,
  EVENT_TYPE_PATTERN,
  EventTypeSchema,
  isTerminalStatus,
  isValidRunId,
  isValidTag,
  MAX_RUN_TAGS,
  RUN_ID_PATTERN,
  RUN_STATUSES,
  type RunEvent,
  RunEventSchema,
  RunIdSchema,
  type RunState,
  RunStateSchema,
  type RunStatus,
  RunStatusSchema,
  TAG_PATTERN,
  TagSchema,
  TERMINAL_STATUSES,
  type TerminalStatus,
} from "./schema";
export {
  compareEnvelopeIds,
  type LiveGap,
  type LogGap,
  type LogPage,
  type LogQuery,
  type MaybePromise,
  type ResyncReason,
  type RunEventSource,
  type RunSnapshot,
  type SourceLag,
} from "./source";
export type { StartOutcome } from "./start";
export type { EndReason, ReplaySizeStats } from "./stats";
export {
  createStreamToken,
  MAX_TOKEN_LENGTH,
  MIN_TOKEN_SECRET_BYTES,
  type StreamTokenClaims,
  type StreamTokenOptions,
} from "./tokens";
export { MAX_FILTER_ENTRIES, type StreamScope } from "./view";
