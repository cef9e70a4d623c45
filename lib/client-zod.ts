/**
 * The part of zod's `z` that `lib/schema.ts` uses, for the self-contained browser bundle
 * (`dist/client.browser.mjs`), which resolves `zod` here. Bundling zod's whole `z` namespace
 * object would carry every locale and the JSON Schema converters along (about 450 kB
 * minified); these named imports let the bundler keep only what the schemas need.
 * A member missing here fails the build's load check, not a page.
 */
import { discriminatedUnion, enum as enumOf, iso, literal, looseObject, number, object, string } from "zod";

/** A `z` with only the members the schemas use. */
export const z = { discriminatedUnion, enum: enumOf, iso, literal, looseObject, number, object, string };
