import type { LiveGap, ResyncReason } from "../source";
import type { FeedStatus } from "./replies";
import { inRange } from "./stream-ids";

/**
 * Why a log cannot serve a read after `after` (a canonical id): `trimmed` when it lies
 * between the log's beginning (`low`: a run's first envelope, or the feed's first entry ever)
 * and its oldest entry kept, and entries were trimmed; `unknown_id` otherwise. Read from the
 * start (no `after`), a run's log refuses only because it was trimmed.
 */
export function gapReason(feed: boolean, after: string | undefined, low: string, oldest: string): ResyncReason {
  if (after === undefined) return feed ? "unknown_id" : "trimmed";
  // An untrimmed log starts at `low` itself, so nothing lies between the two.
  return low !== "" && oldest !== "" && inRange(after, low, oldest) ? "trimmed" : "unknown_id";
}

/**
 * What became of the feed where a reader read after `position` (`"0-0"`: nothing taken yet)
 * once it is back, given the origin it knew ("" when none): nothing (`undefined`), entries
 * trimmed away before it could read them, or the history lost (the feed is empty or began
 * again: Redis restarted without its data, or was flushed).
 */
export function feedLoss(position: string, knownOrigin: string, status: FeedStatus): LiveGap["reason"] | undefined {
  const { origin, oldest, held } = status;
  if (origin === "") return position === "0-0" && knownOrigin === "" ? undefined : "history_lost";
  if (knownOrigin !== "" && origin !== knownOrigin) return "history_lost";
  if (held) return undefined;
  if (position === "0-0") return oldest === origin ? undefined : "trimmed";
  if (oldest !== "" && inRange(position, origin, oldest)) return "trimmed";
  return "history_lost";
}
