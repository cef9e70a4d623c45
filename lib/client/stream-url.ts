/**
 * Stream URLs: the query parameters a watcher adds, and resolving a URL given as a function.
 *
 * @packageDocumentation
 */
import type { StreamUrl } from "./types";

/** A query parameter: a value, a list (sent comma-separated), or `undefined` to leave it out. */
export type QueryParam = readonly [name: string, value: string | readonly string[] | undefined];

/**
 * `url` with `params` added to its query (before any `#fragment`). List items are encoded one
 * by one and joined with literal commas, as the server splits them (`?tags=a,b`).
 */
export function appendQuery(url: string, params: readonly QueryParam[]): string {
  const parts: string[] = [];
  for (const [name, value] of params) {
    if (value === undefined) continue;
    const encoded = typeof value === "string" ? encodeURIComponent(value) : value.map(encodeURIComponent).join(",");
    parts.push(`${encodeURIComponent(name)}=${encoded}`);
  }
  if (parts.length === 0) return url;
  const hash = url.indexOf("#");
  const base = hash < 0 ? url : url.slice(0, hash);
  return `${base}${base.includes("?") ? "&" : "?"}${parts.join("&")}${hash < 0 ? "" : url.slice(hash)}`;
}

/**
 * The URL to open now: `url` itself, or what the function returns (synchronously when it can,
 * so a plain URL opens in the same turn). Throws or rejects as the function does.
 */
export function resolveUrl(url: StreamUrl): string | Promise<string> {
  if (typeof url !== "function") return String(url);
  const value = url();
  return typeof value === "object" && "then" in value ? Promise.resolve(value).then(String) : String(value);
}
