/**
 * The subscriptions behind runcast/react's hooks, free of React: one watcher per key however
 * many components use it, opened by the first subscriber and closed shortly after the last
 * one leaves (so React StrictMode's mount, unmount, mount opens one connection, not two).
 * Nothing is created until a component subscribes, which never happens in server rendering.
 */

/** Opens a watcher that reports each change through `publish`; returns the function that closes it. */
export type Opener<View> = (publish: (update: (view: View) => View) => void) => () => void;

interface Entry<View> {
  view: View;
  readonly listeners: Set<() => void>;
  close: (() => void) | undefined;
  closing: ReturnType<typeof setTimeout> | undefined;
}

/**
 * Shared watchers by key: a target compared by identity (a URL string, or a URL function) and
 * a variant compared by value (the serialized options).
 */
export class SharedWatchers<View> {
  readonly #entries = new Map<unknown, Map<string, Entry<View>>>();

  /** The current view of a key, or `undefined` when nothing watches it. Stable until it changes. */
  peek(target: unknown, variant: string): View | undefined {
    return this.#entries.get(target)?.get(variant)?.view;
  }

  /**
   * Adds `listener` to the key's watcher, opening it with `open` when it is the first (its
   * view starts as `initial`). Returns the function that removes the listener; the watcher
   * closes a turn after its last listener left, unless another came meanwhile.
   */
  subscribe(target: unknown, variant: string, initial: View, open: Opener<View>, listener: () => void): () => void {
    let variants = this.#entries.get(target);
    if (variants === undefined) {
      variants = new Map();
      this.#entries.set(target, variants);
    }
    let entry = variants.get(variant);
    if (entry === undefined) {
      entry = { view: initial, listeners: new Set(), close: undefined, closing: undefined };
      variants.set(variant, entry);
    }
    const held = entry;
    const byVariant = variants;
    if (held.closing !== undefined) {
      clearTimeout(held.closing);
      held.closing = undefined;
    }
    held.listeners.add(listener);
    held.close ??= open((update) => {
      held.view = update(held.view);
      for (const notify of [...held.listeners]) notify();
    });
    return () => {
      held.listeners.delete(listener);
      if (held.listeners.size > 0 || held.closing !== undefined) return;
      // Not at once: a remount in the same turn (StrictMode, a keyed re-render) keeps the connection.
      held.closing = setTimeout(() => {
        held.closing = undefined;
        if (held.listeners.size > 0) return;
        held.close?.();
        held.close = undefined;
        byVariant.delete(variant);
        if (byVariant.size === 0) this.#entries.delete(target);
      }, 0);
    };
  }
}

/** Identity numbers of option values compared by identity (schemas, constructors, functions). */
const identities = new WeakMap<object, number>();
let nextIdentity = 0;

function identityOf(value: object): string {
  let id = identities.get(value);
  if (id === undefined) {
    id = nextIdentity++;
    identities.set(value, id);
  }
  return `#${id}`;
}

/**
 * A stable text of `options`, for sharing by value: strings, numbers, booleans and arrays of
 * them by value; anything else (a schema, a constructor, a function) by identity, so options
 * that differ in such a value never share a watcher.
 */
export function variantOf(options: object): string {
  const plain: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(options).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    if (value === undefined) continue;
    const byValue =
      typeof value !== "object" && typeof value !== "function"
        ? true
        : Array.isArray(value) && value.every((item) => item === null || typeof item !== "object");
    plain[name] = byValue ? value : identityOf(value as object);
  }
  return JSON.stringify(plain);
}
