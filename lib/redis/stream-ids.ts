import { compareEnvelopeIds } from "../source";

/** Stream ids in their one canonical spelling: `<ms>-<seq>`, decimal without leading zeros. */
const CANONICAL_ID = /^(0|[1-9]\d{0,19})-(0|[1-9]\d{0,19})$/;
const UINT64_MAX = 2n ** 64n - 1n;

/**
 * Whether `id` is a Redis stream id spelled as Redis spells the ids it makes. Redis itself
 * reads `01-1` or `5` as ids too, so anything else must be turned away before it reaches a
 * command, or it would name an entry the client never saw.
 */
export function isCanonicalStreamId(id: unknown): id is string {
  if (typeof id !== "string") return false;
  const match = CANONICAL_ID.exec(id);
  return match !== null && BigInt(match[1] ?? "0") <= UINT64_MAX && BigInt(match[2] ?? "0") <= UINT64_MAX;
}

/** Whether `low <= id < high` (canonical stream ids). */
export function inRange(id: string, low: string, high: string): boolean {
  return compareEnvelopeIds(low, id) <= 0 && compareEnvelopeIds(id, high) < 0;
}
