import type { SourceCapabilities, SourceFixture } from "./types";

/** What every behaviour test gets. */
export interface SuiteContext {
  create(): SourceFixture | Promise<SourceFixture>;
  capabilities: SourceCapabilities;
  timeoutMs: number;
}

/** One named behaviour: what it needs declared, and how it is checked. */
export interface Behaviour {
  name: string;
  /** The capabilities it needs (all of them), by name. */
  needs: (keyof SourceCapabilities)[];
  run(context: SuiteContext): Promise<void>;
}
