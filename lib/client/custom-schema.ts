/**
 * Custom fields, checked: a page may hand the client its own schemas for run states and
 * events (zod, classic or mini, or any library implementing Standard Schema), so fields such
 * as `units` are validated and typed. They run after the built-in checks, which always apply.
 *
 * @packageDocumentation
 */

/** What a {@link FrameSchema} says of a value: the value (possibly transformed), or its issues. */
export type FrameSchemaResult<T> =
  | { readonly value: T; readonly issues?: undefined }
  | {
      readonly issues: ReadonlyArray<{
        readonly message: string;
        readonly path?: ReadonlyArray<PropertyKey | { readonly key: PropertyKey }> | undefined;
      }>;
    };

/**
 * A schema for frame data, by the Standard Schema interface (`"~standard".validate`), which
 * zod 4 schemas implement: e.g. `RunStateSchema.extend({ units: z.array(z.string()) })`. It
 * must validate synchronously.
 */
export interface FrameSchema<T> {
  readonly "~standard": {
    readonly validate: (value: unknown) => FrameSchemaResult<T> | Promise<FrameSchemaResult<T>>;
  };
}

/** Runs a page's schema on frame data that passed the built-in checks: the value, or a one-line reason. */
export function checkCustom<T>(
  schema: FrameSchema<T>,
  data: unknown,
): { ok: true; value: T } | { ok: false; why: string } {
  const result = schema["~standard"].validate(data);
  if (result instanceof Promise) {
    // A frame's handlers run in order, now: a schema that answers later cannot be waited for.
    result.catch(() => undefined);
    return { ok: false, why: "the page's schema is asynchronous; frames need a synchronous one" };
  }
  if (result.issues === undefined) return { ok: true, value: result.value };
  const why = result.issues
    .map((issue) => {
      const path = (issue.path ?? []).map((part) => String(typeof part === "object" ? part.key : part));
      return path.length > 0 ? `${path.join(".")}: ${issue.message}` : issue.message;
    })
    .join("; ");
  return { ok: false, why };
}
