import type { IncomingMessage, ServerResponse } from "node:http";

/**
 * Waits until `res` is the response its connection is answering. HTTP/1.1 lets a client send
 * requests one after another on one connection (pipelining); Node answers them in order and
 * gives a response its socket only when every response before it has finished. Until then
 * the response has no socket (`res.socket` is `null`), writes to it pile up in memory, and it
 * is never told when the connection closes. A stream behind a live stream would wait forever,
 * so nothing is started for it before its turn: resolves `true` once the response holds its
 * socket, `false` when the connection closed first.
 */
export function awaitTurn(req: IncomingMessage, res: ServerResponse): Promise<boolean> {
  if (res.socket !== null) return Promise.resolve(true);
  // A queued response's connection is its request's socket.
  const socket = req.socket;
  if (socket.destroyed) return Promise.resolve(false);
  return new Promise((resolve) => {
    const served = (): void => {
      socket.off("close", gone);
      resolve(true);
    };
    const gone = (): void => {
      res.off("socket", served);
      resolve(false);
    };
    res.once("socket", served);
    socket.once("close", gone);
  });
}
