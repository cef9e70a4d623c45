/**
 * What the writer calls (`createRun`, `recordEvent`, `updateRun`, `completeRun`) take, typed
 * by the host's own run state and event types. With the built-in `RunState` and `RunEvent`
 * (the defaults) any extra field passes, as it always has. A `State` or `Event` that declares
 * fields of its own closes the input: each field must be a built-in one or one it declares,
 * so a misspelt field (`total_unit`, `complete_units`) does not compile.
 *
 * Types only: nothing here exists at run time.
 *
 * @packageDocumentation
 */
import type { RunEvent, RunState, TerminalStatus } from "./schema";

/** `T`'s named fields, without its index signature (the built-in types have one, for extra fields). */
type Named<T> = {
  [K in keyof T as string extends K ? never : number extends K ? never : symbol extends K ? never : K]: T[K];
};

/** Built-in fields of a run state: their types and rules stay runcast's own. */
type BuiltInStateField = keyof Named<RunState>;
/** Event fields the writer fills in when absent. */
type FilledEventField = "run_id" | "ts";

/** The fields `State` declares beyond the built-in ones (none for `RunState` itself). */
export type CustomStateFields<State extends RunState> = Omit<Named<State>, BuiltInStateField>;

/**
 * The custom fields a writer call takes: any (`Record<string, unknown>`) while `State`
 * declares none of its own, else exactly those it declares.
 */
type StateExtras<State extends RunState, Fields> = [keyof CustomStateFields<State>] extends [never]
  ? Record<string, unknown>
  : Fields;

/**
 * What `createRun` takes: an id, and the run's first fields. With a `State` of the host's,
 * the fields it declares (required ones required: the first state is made from them).
 */
export type RunInit<State extends RunState = RunState> = {
  id: string;
  /** Up to 32 tags, fixed for the run's life (see `RunStateSchema`). */
  tags?: string[] | undefined;
  /** @default "pending" */
  status?: "pending" | "running" | undefined;
  /** @default 0 */
  completed_units?: number | undefined;
  total_units?: number | undefined;
} & StateExtras<State, CustomStateFields<State>>;

/** What `updateRun` takes: fields to merge (never `id`); a status, if given, must not be terminal. */
export type RunPatch<State extends RunState = RunState> = {
  status?: "pending" | "running" | undefined;
  completed_units?: number | undefined;
  total_units?: number | undefined;
} & StateExtras<State, Partial<CustomStateFields<State>>>;

/** What `completeRun` takes: the terminal status and any final fields to merge. */
export type RunCompletion<State extends RunState = RunState> = {
  status: TerminalStatus;
  completed_units?: number | undefined;
  total_units?: number | undefined;
} & StateExtras<State, Partial<CustomStateFields<State>>>;

/** One event type's input: its fields as declared, `run_id` and `ts` optional. */
type OneEventInput<Event> = Omit<Named<Event>, FilledEventField> & {
  /** @default the run recorded for */
  run_id?: string | undefined;
  /** ISO 8601 timestamp. @default the time of the call */
  ts?: string | undefined;
};

/** Whether `Event` (or any member of a union of event types) declares fields beyond the built-in ones. */
type DeclaresEventFields<Event> = (
  Event extends unknown
    ? Exclude<keyof Named<Event>, keyof Named<RunEvent>>
    : never
) extends never
  ? false
  : true;

/**
 * What `recordEvent` takes: `run_id` and `ts` are filled in when absent. With an `Event` of
 * the host's (a union of event types works: each `type` then takes its own fields), the
 * fields it declares, and the `type` values it allows.
 */
export type EventInput<Event extends RunEvent = RunEvent> =
  DeclaresEventFields<Event> extends true
    ? Event extends unknown
      ? OneEventInput<Event>
      : never
    : {
        type: Event["type"];
        unit?: string | undefined;
        /** @default the run recorded for */
        run_id?: string | undefined;
        /** ISO 8601 timestamp. @default the time of the call */
        ts?: string | undefined;
      } & Record<string, unknown>;
