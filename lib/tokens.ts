/**
 * Stream tokens: short-lived, signed JWTs (HS256, built with `jose`) that carry a scope, for
 * browsers whose `EventSource` cannot send an `Authorization` header. Any service that can
 * sign an HS256 JWT with the shared secret can mint one: the claims are `tags` and `runs` at
 * the top level of the payload, beside the standard `exp`, `iat` and `nbf`.
 */
import { randomUUID } from "node:crypto";
import { errors, jwtVerify, SignJWT } from "jose";
import { RuncastError } from "./errors";
import { isValidRunId, isValidTag } from "./schema";
import type { StreamScope } from "./view";

/** The shortest secret accepted, in bytes (HS256 wants a key at least as long as its 256-bit hash). */
export const MIN_TOKEN_SECRET_BYTES = 32;
/** Tokens longer than this (in characters) are refused unread. */
export const MAX_TOKEN_LENGTH = 8 * 1024;

const ALGORITHM = "HS256";

/** What {@link createStreamToken} puts in a token. */
export interface StreamTokenClaims {
  /** The token's holder sees runs carrying any of these tags. */
  tags?: readonly string[] | undefined;
  /** ...and these runs. With neither `tags` nor `runs`, the token is unscoped (every run). */
  runs?: readonly string[] | undefined;
  /**
   * How long the token is valid: seconds (a number), or a duration such as `"15m"`, `"1h"`,
   * `"30 seconds"`. Keep it short: a stream ends when its token expires, and the client
   * resumes with a fresh one.
   */
  expiresIn: number | string;
}

/** The router option `tokens`: where stream tokens are accepted and checked. */
export interface StreamTokenOptions {
  /** The HS256 secret tokens are signed with: at least 32 bytes (a string counts its UTF-8 bytes). */
  secret: string | Uint8Array;
}

/** A secret as key bytes, or `invalid_option` when it is too short to be one. */
export function secretKey(secret: unknown, where: string): Uint8Array {
  const key =
    typeof secret === "string" ? new TextEncoder().encode(secret) : secret instanceof Uint8Array ? secret : undefined;
  if (key === undefined || key.byteLength < MIN_TOKEN_SECRET_BYTES) {
    throw new RuncastError(
      "invalid_option",
      `${where} must be a string or Uint8Array of at least ${MIN_TOKEN_SECRET_BYTES} bytes (use a random secret)`,
    );
  }
  return key;
}

function listClaim(name: string, value: unknown, valid: (entry: string) => boolean): string[] {
  if (!Array.isArray(value) || !value.every((entry) => typeof entry === "string" && valid(entry))) {
    throw new RuncastError("invalid_option", `${name} must be an array of 1 to 128 characters of [A-Za-z0-9._:-] each`);
  }
  return [...value];
}

/**
 * Mints a stream token: a JWT signed with HS256 whose payload holds the scope (`tags`,
 * `runs`), `iat`/`exp` and a random `jti`. Hand it to a page, which opens `…/stream?token=<token>`.
 *
 * @param secret - The router's `tokens.secret` (at least 32 bytes).
 * @param claims - The scope and lifetime; see {@link StreamTokenClaims}.
 * @throws RuncastError `invalid_option` for a short secret, a bad list or lifetime.
 */
export async function createStreamToken(secret: string | Uint8Array, claims: StreamTokenClaims): Promise<string> {
  const key = secretKey(secret, "the secret");
  const payload: Record<string, string[]> = {};
  // A present key must hold a list: `{ tags: user.teams }` with no teams must not mint an unscoped token.
  if (claims !== null && typeof claims === "object" && "tags" in claims) {
    payload.tags = listClaim("tags", claims.tags, isValidTag);
  }
  if (claims !== null && typeof claims === "object" && "runs" in claims) {
    payload.runs = listClaim("runs", claims.runs, isValidRunId);
  }
  const expiresIn = claims?.expiresIn;
  const now = Math.floor(Date.now() / 1000);
  let exp: number | string;
  if (typeof expiresIn === "number" && Number.isFinite(expiresIn) && expiresIn > 0) exp = now + Math.ceil(expiresIn);
  else if (typeof expiresIn === "string") exp = expiresIn;
  else throw new RuncastError("invalid_option", "expiresIn must be a positive number of seconds or a string like 15m");
  let token: string;
  try {
    token = await new SignJWT(payload)
      .setProtectedHeader({ alg: ALGORITHM, typ: "JWT" })
      .setIssuedAt(now)
      .setExpirationTime(exp)
      // Each token its own: two minted in the same second for the same scope still differ,
      // so logs and deny lists can tell them apart.
      .setJti(randomUUID())
      .sign(key);
  } catch (error) {
    throw new RuncastError("invalid_option", `expiresIn ${JSON.stringify(expiresIn)} is not a duration`, {
      cause: error,
    });
  }
  const { exp: expires } = JSON.parse(Buffer.from(token.split(".")[1] ?? "", "base64url").toString()) as {
    exp: number;
  };
  if (expires <= now) throw new RuncastError("invalid_option", "expiresIn must be in the future");
  if (token.length > MAX_TOKEN_LENGTH) {
    throw new RuncastError(
      "invalid_option",
      `the token is over ${MAX_TOKEN_LENGTH} characters: list fewer tags or runs`,
    );
  }
  return token;
}

/** A token checked: its scope (`undefined` when unscoped) and when it expires (ms since the epoch). */
export interface VerifiedToken {
  scope: StreamScope | undefined;
  expiresAt: number;
}

/** Why a token was refused. */
export type TokenProblem = "invalid_token" | "token_expired";

function optionalList(value: unknown, valid: (entry: string) => boolean): string[] | undefined | false {
  if (value === undefined) return undefined;
  return Array.isArray(value) && value.every((entry) => typeof entry === "string" && valid(entry)) ? value : false;
}

/**
 * Checks a token: signature (HS256 only: `none` and other algorithms are refused), `exp`
 * (required), `nbf`, and the shape of its claims. Never throws: a refused token answers
 * why, and the token itself appears in no message.
 */
export async function verifyStreamToken(key: Uint8Array, token: string): Promise<VerifiedToken | TokenProblem> {
  if (token.length === 0 || token.length > MAX_TOKEN_LENGTH) return "invalid_token";
  let payload: Record<string, unknown>;
  try {
    ({ payload } = await jwtVerify(token, key, { algorithms: [ALGORITHM], requiredClaims: ["exp"] }));
  } catch (error) {
    return error instanceof errors.JWTExpired ? "token_expired" : "invalid_token";
  }
  const tags = optionalList(payload.tags, isValidTag);
  const runs = optionalList(payload.runs, isValidRunId);
  if (tags === false || runs === false || typeof payload.exp !== "number") return "invalid_token";
  const scope = tags === undefined && runs === undefined ? undefined : { tags, runs };
  return { scope, expiresAt: payload.exp * 1000 };
}

/**
 * The token a request carries: `Authorization: Bearer <token>`, else `?token=`. `undefined`
 * when there is none; `""` when it is sent but malformed (several, or empty).
 */
export function tokenOf(authorization: string | undefined, query: URLSearchParams): string | undefined {
  if (authorization !== undefined) {
    const match = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(authorization);
    if (match !== null) return match[1];
  }
  const values = query.getAll("token");
  if (values.length === 0) return undefined;
  return values.length === 1 ? (values[0] as string) : "";
}
