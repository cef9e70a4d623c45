/**
 * `npm run example`: the simulated daemon and its dashboard on http://127.0.0.1:3000/
 * (`PORT` and `HOST` change where it listens). Streams need stream tokens, signed with
 * `RUNCAST_TOKEN_SECRET` (at least 32 bytes) or, when it is unset, a random secret made at
 * start. Ctrl-C stops it gracefully: the router ends every stream first, so the HTTP server
 * can close at once.
 */
import { createExample } from "./app";
import { secretNotice, type TokenSecret, tokenSecretFromEnv } from "./stream-token";

const port = Number(process.env.PORT ?? 3000);
const host = process.env.HOST ?? "127.0.0.1";

let tokens: TokenSecret;
try {
  tokens = tokenSecretFromEnv();
} catch (error) {
  console.error(`runcast example: ${(error as Error).message}`);
  process.exit(1);
}

const example = createExample({ tokenSecret: tokens.secret });
const server = example.app.listen(port, host, () => {
  const address = server.address();
  const shown = typeof address === "object" && address !== null ? address.port : port;
  console.log(`runcast example dashboard: http://${host}:${shown}/`);
  console.log(secretNotice(tokens));
  console.log("Ctrl-C to stop.");
  example.orchestrator.autostart();
});
server.on("error", (error) => {
  console.error(`runcast example: cannot listen on ${host}:${port}: ${error.message}`);
  process.exit(1);
});

let stopping = false;
async function shutdown(signal: string): Promise<void> {
  if (stopping) {
    // A second Ctrl-C: do not wait any longer.
    process.exit(1);
  }
  stopping = true;
  console.log(`\n${signal}: ending the streams, then closing the server...`);
  await example.close(); // orchestrator.stop() and router.close(): every stream ends
  server.close(() => {
    console.log("stopped.");
    process.exit(0);
  });
  // Idle keep-alive connections (the page's fetches) would hold server.close() up.
  server.closeIdleConnections();
}

process.once("SIGINT", () => void shutdown("SIGINT"));
process.once("SIGTERM", () => void shutdown("SIGTERM"));
