/** Which of a source's connections. */
export type ConnectionRole = "commands" | "reader";

/** Settings of an {@link AnswerWatch}. */
export interface AnswerWatchOptions {
  /** How long a command may wait for Redis's answer (beyond its allowance) before it is reported. */
  limitMs: number;
  /** Whether the connection is up: a command waiting for a lost connection is that loss's to report. */
  isReady(role: ConnectionRole): boolean;
  /** Told once per silence of a connection: the longest wait and what waits. */
  report(role: ConnectionRole, waitedMs: number, what: string): void;
}

interface Wait {
  readonly role: ConnectionRole;
  readonly what: string;
  readonly since: number;
  /** Time the command may take by design (a blocking read's timeout). */
  readonly allowanceMs: number;
}

/**
 * Notices a Redis that holds its connections open but does not answer (paused with SIGSTOP,
 * stuck in a long script, a network that drops packets without resetting). ioredis waits
 * for such answers forever and sees no error, so commands in flight are timed here: when one
 * has waited past the limit on a connection that is up, that connection's silence is
 * reported, once, until an answer arrives on it again. A timer runs only while a command waits.
 */
export class AnswerWatch {
  readonly #options: AnswerWatchOptions;
  readonly #waits = new Set<Wait>();
  readonly #silent: Record<ConnectionRole, boolean> = { commands: false, reader: false };
  readonly #readyAt: Record<ConnectionRole, number> = { commands: 0, reader: 0 };
  readonly #everyMs: number;
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;

  constructor(options: AnswerWatchOptions) {
    this.#options = options;
    this.#everyMs = Math.max(20, Math.min(1_000, Math.floor(options.limitMs / 4)));
  }

  /** Times `promise`, a command sent on `role`'s connection, until it settles. */
  watch<T>(role: ConnectionRole, what: string, promise: Promise<T>, allowanceMs = 0): Promise<T> {
    if (this.#stopped) return promise;
    const wait: Wait = { role, what, since: Date.now(), allowanceMs };
    this.#waits.add(wait);
    if (this.#timer === undefined) {
      this.#timer = setInterval(() => this.#check(), this.#everyMs);
      this.#timer.unref();
    }
    const settled = (): void => {
      this.#waits.delete(wait);
      this.#silent[role] = false;
      if (this.#waits.size === 0) this.#disarm();
    };
    promise.then(settled, settled);
    return promise;
  }

  /** The connection (re)connected: what it was waiting for is sent again, so its waits count from now. */
  ready(role: ConnectionRole): void {
    this.#readyAt[role] = Date.now();
  }

  /** Stops timing for good. */
  stop(): void {
    this.#stopped = true;
    this.#waits.clear();
    this.#disarm();
  }

  #disarm(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
  }

  #check(): void {
    const now = Date.now();
    const longest: Partial<Record<ConnectionRole, Wait & { waited: number }>> = {};
    for (const wait of this.#waits) {
      const { role } = wait;
      if (this.#silent[role] || !this.#options.isReady(role)) continue;
      const waited = now - Math.max(wait.since, this.#readyAt[role]);
      if (waited - wait.allowanceMs < this.#options.limitMs) continue;
      if ((longest[role]?.waited ?? -1) < waited) longest[role] = { ...wait, waited };
    }
    for (const wait of Object.values(longest)) {
      this.#silent[wait.role] = true;
      this.#options.report(wait.role, wait.waited, wait.what);
    }
  }
}
