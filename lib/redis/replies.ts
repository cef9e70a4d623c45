/**
 * The shapes of what Redis and the source's scripts answer (RESP2), checked: a reply of any
 * other shape is a bug or a foreign key, and throws rather than being guessed at.
 */

/** A stream entry as Redis returns it: id, then flat field/value pairs. */
export type StreamEntry = [id: string, fields: string[]];

export function isStringArray(value: unknown): value is string[] {
  return Array.isArray(value) && value.every((item) => typeof item === "string");
}

export function isEntry(value: unknown): value is StreamEntry {
  return Array.isArray(value) && value.length === 2 && typeof value[0] === "string" && isStringArray(value[1]);
}

/** The entries of an `XREAD` reply (`[[key, [[id, fields], ...]]]`, or null). */
export function entriesOf(reply: unknown): StreamEntry[] {
  if (!Array.isArray(reply)) return [];
  const out: StreamEntry[] = [];
  for (const stream of reply) {
    if (!Array.isArray(stream) || !Array.isArray(stream[1])) continue;
    for (const entry of stream[1]) if (isEntry(entry)) out.push(entry);
  }
  return out;
}

/** A log script's reply: a page of entries, or the bounds of the log that tell a gap's reason. */
export type LogReply = { kind: "page"; entries: StreamEntry[] } | { kind: "gap"; low: string; oldest: string };

export function logReply(reply: unknown): LogReply {
  if (Array.isArray(reply) && reply[0] === "page" && Array.isArray(reply[1])) {
    return { kind: "page", entries: reply[1].filter(isEntry) };
  }
  if (isStringArray(reply) && reply.length === 3 && reply[0] === "gap") {
    return { kind: "gap", low: reply[1] as string, oldest: reply[2] as string };
  }
  throw new Error("runcast/redis: unexpected log reply");
}

/**
 * The global feed as the live reader sees it: its newest, first-ever (`origin`) and oldest
 * kept ids ("" for none), and whether it holds the id asked about.
 */
export interface FeedStatus {
  newest: string;
  origin: string;
  oldest: string;
  held: boolean;
}

export function feedStatusOf(reply: unknown): FeedStatus {
  if (!Array.isArray(reply) || reply.length !== 4) throw new Error("runcast/redis: unexpected feed status reply");
  const [newest, origin, oldest, held] = reply as [string, string, string, number];
  return { newest, origin, oldest, held: held === 1 };
}
