/**
 * What a failed stream's HTTP status was, when the `EventSource` does not say (browsers).
 *
 * @packageDocumentation
 */
import type { FetchLike } from "./types";

/** How long a status probe of a failed stream may take before it counts as a plain failure, in ms. */
const PROBE_TIMEOUT_MS = 10_000;

/** The HTTP status an error event carries, when the `EventSource` implementation tells it. */
export function statusOf(event: unknown): number | undefined {
  const code = typeof event === "object" && event !== null ? (event as { code?: unknown }).code : undefined;
  return typeof code === "number" && code > 0 ? code : undefined;
}

/** What a status probe learned of a stream's URL. */
export interface Probed {
  status: number;
  serverCode: string | undefined;
}

/**
 * Asks the server for the status of a stream's URL, as the `EventSource` that gave up on it
 * would have seen it, and reads the error code of a JSON error body. The request is aborted as
 * soon as that is known (a 200 stream is not read). `undefined` when the server cannot be
 * reached or does not answer within {@link PROBE_TIMEOUT_MS}.
 */
export async function probeStatus(
  url: string,
  fetchImpl: FetchLike,
  withCredentials: boolean,
): Promise<Probed | undefined> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), PROBE_TIMEOUT_MS);
  try {
    const response = await fetchImpl(url, {
      headers: { Accept: "text/event-stream" },
      credentials: withCredentials ? "include" : "same-origin",
      cache: "no-store",
      signal: controller.signal,
    });
    let serverCode: string | undefined;
    if (response.status >= 400 && (response.headers.get("content-type") ?? "").includes("json")) {
      const body = await response.json().catch(() => undefined);
      const code = (body as { error?: { code?: unknown } } | undefined)?.error?.code;
      if (typeof code === "string") serverCode = code;
    }
    return { status: response.status, serverCode };
  } catch {
    return undefined;
  } finally {
    clearTimeout(timer);
    controller.abort();
  }
}

/** A status that says reopening the stream would not help: 204 (nothing more to send), and 4xx but 408 and 429. */
export function isRefusal(status: number | undefined): status is number {
  return status === 204 || (status !== undefined && status >= 400 && status < 500 && status !== 408 && status !== 429);
}
