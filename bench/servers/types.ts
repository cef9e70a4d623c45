import type { Server, ServerResponse } from "node:http";
import type { BenchEvent, DeliveryStamps } from "../protocol";
import type { RunRecorder } from "./runs-writer";

/** One server under test, as the benchmark drives it. */
export interface Fanout {
  /** The HTTP server, not yet listening. */
  readonly server: Server;
  /** Every stream response accepted, for the load governor; closed ones stay listed. */
  readonly responses: ServerResponse[];
  /** Broadcasts one event to every client, the way a user of this server would. */
  publish(event: BenchEvent): void;
  /**
   * Broadcasts handed on but not yet acknowledged (the Redis server's unanswered writes);
   * the blast governor holds back while there are too many. Absent: publishing is synchronous.
   */
  pending?(): number;
  /** Clients connected now. */
  clients(): number;
  /** Clients the server disconnected for falling behind. */
  cutOffs(): number;
  /**
   * Broadcasts come in whole multiples of this (default 1): a server spreading events over
   * that many runs rounds each blast up, so a client of one run gets an exact share.
   */
  readonly batch?: number;
  /** Ends every stream, spread over `drainMs` (the deploy phase); where the server can. */
  close?(drainMs: number): Promise<void>;
  /** Creating runs and recording into any of them, where the server can (the storm phase's writer). */
  readonly runs?: RunRecorder;
  /** When each event reached the router and each stamped client's socket, where the server was asked to record that. */
  readonly stamps?: DeliveryStamps;
}
