import type { Envelope, RunEventSource, RunState } from "../../lib/index";

/**
 * A minimal adapter with only the required methods (no snapshot, replay, completion), whose
 * `emit` pushes anything, valid or not, to subscribers: how a host's own buggy adapter looks.
 */
export class BareSource implements RunEventSource {
  readonly runs = new Map<string, RunState>();
  readonly listeners = new Set<(envelope: Envelope) => void>();
  getRunError: Error | undefined;

  getRun(runId: string): RunState | undefined {
    if (this.getRunError !== undefined) throw this.getRunError;
    return this.runs.get(runId);
  }
  listRuns(): RunState[] {
    return [...this.runs.values()];
  }
  subscribe(listener: (envelope: Envelope) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
  /** Pushes a value to subscribers as if it were an envelope. */
  emit(value: unknown): void {
    for (const listener of this.listeners) listener(value as Envelope);
  }
}
