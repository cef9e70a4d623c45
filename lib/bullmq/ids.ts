/**
 * Envelope ids of `runcast/bullmq`: `<ms>-<seq>-<k>`, the id of the BullMQ event-stream entry
 * the envelope comes from, then its place among that entry's envelopes. Every process derives
 * the same envelopes from the same entry, so an id means the same thing on every process.
 */
const ENVELOPE_ID = /^(0|[1-9]\d{0,19})-(0|[1-9]\d{0,19})-(0|[1-9]\d{0,2})$/;

/** The parts of an envelope id in its one canonical spelling; `undefined` for anything else. */
export function parseEnvelopeId(id: unknown): { entry: string; index: number } | undefined {
  if (typeof id !== "string") return undefined;
  const match = ENVELOPE_ID.exec(id);
  if (match === null) return undefined;
  return { entry: `${match[1]}-${match[2]}`, index: Number(match[3]) };
}

/** The id of envelope `index` of stream entry `entry`. */
export function envelopeId(entry: string, index: number): string {
  return `${entry}-${index}`;
}

function parts(id: string): bigint[] {
  return id.split("-").map((part) => (/^\d+$/.test(part) ? BigInt(part) : -1n));
}

/** Orders envelope ids (and stream entry ids, which sort before their envelopes). */
export function compareBullmqIds(a: string, b: string): number {
  const [x, y] = [parts(a), parts(b)];
  for (let i = 0; i < 3; i++) {
    const [p, q] = [x[i] ?? -1n, y[i] ?? -1n];
    if (p !== q) return p < q ? -1 : 1;
  }
  return 0;
}
