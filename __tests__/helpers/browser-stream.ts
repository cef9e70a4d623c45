import { EventSource } from "eventsource";
import type { TestServer } from "./server";

/** What {@link browserStream} saw. */
export interface BrowserStream {
  /** The spec EventSource; it reconnects by itself with Last-Event-ID, as a browser's does. */
  es: EventSource;
  /** [type, lastEventId] of each `state`, `event` and `complete` frame, in order. */
  seen: Array<[string, string]>;
  /** The Last-Event-ID header of every request the server received from then on. */
  requests: Array<string | undefined>;
}

/** Opens `path` of `t` with a spec EventSource, recording its frames and the server's requests. */
export function browserStream(t: TestServer, path: string): BrowserStream {
  const seen: Array<[string, string]> = [];
  const requests: Array<string | undefined> = [];
  t.server.on("request", (req) => requests.push(req.headers["last-event-id"] as string | undefined));
  const es = new EventSource(`${t.url}${path}`);
  for (const type of ["state", "event", "complete"]) {
    es.addEventListener(type, (e) => seen.push([type, (e as MessageEvent).lastEventId]));
  }
  return { es, seen, requests };
}
