import { type ChildProcess, fork } from "node:child_process";
import path from "node:path";

/** What the crowd process reports of one client. */
export interface Result {
  status: number;
  frames: number;
  lastId: string | undefined;
}

/** Starts a crowd of clients, in a process of its own (see helpers/resume-clients.ts). */
export function crowd(): ChildProcess {
  return fork(path.join(__dirname, "resume-clients.ts"), [], {
    execArgv: ["-r", "ts-node/register/transpile-only"],
    env: { ...process.env, TS_NODE_COMPILER_OPTIONS: JSON.stringify({ module: "commonjs", moduleResolution: "node" }) },
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
}

export function message<T>(child: ChildProcess, type: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const onMessage = (m: { type: string }): void => {
      if (m.type !== type) return;
      child.off("message", onMessage);
      resolve(m as T);
    };
    child.on("message", onMessage);
    child.once("exit", (code) => reject(new Error(`the client process exited (${code}) before ${type}`)));
  });
}

export function exited(child: ChildProcess): Promise<void> {
  return child.exitCode !== null ? Promise.resolve() : new Promise((resolve) => child.once("exit", () => resolve()));
}
