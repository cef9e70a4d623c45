/**
 * Stream tokens in the examples: where the secret comes from, and the endpoint that mints a
 * token for the page. Both example servers (`npm run example`, `npm run example:bullmq`)
 * require a token on every stream, as an app whose streams are not open to everyone would.
 */
import { randomBytes } from "node:crypto";
import type express from "express";
// In your app: import { createStreamToken } from "runcast";
import { createStreamToken, type StreamTokenClaims } from "../lib/index";

/** The environment variable that holds the examples' token secret (at least 32 bytes). */
export const TOKEN_SECRET_ENV = "RUNCAST_TOKEN_SECRET";

/** How long a token the page gets is valid: a few minutes, so a leaked one is soon worthless. */
export const DEFAULT_TOKEN_LIFETIME_SECONDS = 300;

/** The bytes of a secret made at start. */
const GENERATED_SECRET_BYTES = 32;

/** A token secret and where it came from. */
export interface TokenSecret {
  secret: string | Uint8Array;
  /** `true` when it was made at start: tokens then stop being valid when the server restarts. */
  generated: boolean;
}

/**
 * The secret from `RUNCAST_TOKEN_SECRET`, or 32 random bytes made now when it is unset. A
 * generated secret is enough for one process: the page mints a fresh token for every
 * connection, so a restart with a new secret goes unnoticed. Set the variable where several
 * processes (or another service) must accept the same tokens.
 *
 * @throws Error when the variable is set but shorter than 32 bytes (the router would refuse it).
 */
export function tokenSecretFromEnv(env: NodeJS.ProcessEnv = process.env): TokenSecret {
  const value = env[TOKEN_SECRET_ENV];
  if (value === undefined || value === "") {
    return { secret: randomBytes(GENERATED_SECRET_BYTES), generated: true };
  }
  if (Buffer.byteLength(value) < GENERATED_SECRET_BYTES) {
    throw new Error(
      `${TOKEN_SECRET_ENV} must be at least ${GENERATED_SECRET_BYTES} bytes (e.g. openssl rand -base64 48), or unset for a random one`,
    );
  }
  return { secret: value, generated: false };
}

/** Where the secret came from, for the startup log: never the secret itself. */
export function secretNotice({ generated }: TokenSecret): string {
  return generated
    ? `Stream tokens: signed with a random secret made at start (set ${TOKEN_SECRET_ENV}, 32+ bytes, to choose one).`
    : `Stream tokens: signed with the secret in ${TOKEN_SECRET_ENV}.`;
}

/** What the visitor may see, as a token's scope: `{ tags }`, `{ runs }`, or `{}` for every run. */
export type ScopeOf = (req: express.Request) => Omit<StreamTokenClaims, "expiresIn">;

/**
 * `POST /api/stream-token`: a fresh token for the page, as `Cache-Control: no-store` JSON
 * `{ token }`. The page calls it before every stream connection (runcast/client's `url`
 * function), so tokens can be short-lived.
 *
 * POST rather than GET: a request that hands out a credential should not be prefetched,
 * cached or replayed from a link, an `<img>` or the history, as a GET may be. A real app puts
 * its session and CSRF checks in front of it, as for any other POST.
 */
export function streamTokenEndpoint(
  secret: string | Uint8Array,
  lifetimeSeconds: number,
  scopeOf: ScopeOf,
): express.RequestHandler {
  return (req, res, next) => {
    createStreamToken(secret, { ...scopeOf(req), expiresIn: lifetimeSeconds }).then((token) => {
      res.set("Cache-Control", "no-store").json({ token });
    }, next);
  };
}

/** `value` when it is a positive, finite number of seconds; throws otherwise. */
export function checkedLifetime(value: number): number {
  if (!Number.isFinite(value) || value <= 0) {
    throw new RangeError(`tokenLifetimeSeconds must be a positive number of seconds, not ${value}`);
  }
  return value;
}
