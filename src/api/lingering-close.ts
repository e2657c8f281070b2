import type { Socket } from 'node:net';

/** Longest a connection is kept open, after an early answer, for the client to finish sending. */
export const LINGER_MS = 10_000;

/**
 * A 413 goes out while the client is still sending its body, with `Connection: close`. Node then
 * closes the socket as soon as the answer is written; closing with unread bytes makes the kernel
 * send a reset, and a client still writing sees ECONNRESET or EPIPE instead of the 413. As nginx
 * does ("lingering close"), we end our side only, let Node's HTTP parser go on discarding what
 * arrives, and close once the client has finished (or after `lingerMs`).
 */
export function lingerBeforeClose(socket: Socket | null, lingerMs = LINGER_MS): void {
  if (!socket || socket.destroyed) return;
  // Node's HTTP server calls destroySoon() once a `Connection: close` answer is written.
  socket.destroySoon = function lingeringDestroySoon(this: Socket) {
    if (this.writable) this.end();
    const stop = () => {
      clearTimeout(timer);
      this.destroy();
    };
    const timer = setTimeout(stop, lingerMs);
    timer.unref();
    this.once('end', stop);
    this.once('close', () => clearTimeout(timer));
  };
}
