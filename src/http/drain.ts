/**
 * Node only: how the public listener stops, as load balancers need it, dropping nothing (docs/sockets.md, "Drain").
 *
 * A connection is reset, and its client sees an error instead of an answer, when the server closes it while a
 * request is on its way on it: a keep-alive connection closed between two requests, or a connection the kernel
 * accepted that the process has not picked up yet when the listener closes. So the drain goes in phases:
 * 1. `delayMs` (IMGRELAY_DRAIN_DELAY_MS): `/readyz` fails (lifecycle.draining) while the listener accepts and
 *    serves as before, and every response carries `Connection: close`: clients behind a Service or a pool move
 *    their next request to a new connection, which the load balancer sends elsewhere once it saw /readyz fail.
 * 2. The end of the delay (its last quarter, at most SETTLE_MS): answers keep their connection again, so clients
 *    that still come here stop opening connections; the listener closes once none arrived for QUIET_MS (at most
 *    SETTLE_MS past the delay). Closing it while connections sit in the kernel's accept queue would reset them.
 * 3. Listener closed: every response carries `Connection: close` (the socket closes after it, nothing can follow);
 *    a connection idle (between requests, or never used) is closed once idle for IDLE_GRACE_MS (a client that
 *    sends on it right then is the one case HTTP/1.1 cannot rule out); in-flight requests finish; at `deadlineMs`
 *    whatever is left is cut.
 * With `delayMs` 0 (a programmatic close: nobody is told to route away) phases 1 and 2 and the grace are skipped.
 * Before a drain nothing here runs per request; during one, a few listeners per request.
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { Server as NetServer, type Socket } from 'node:net';
import { connectionSockets } from './node-server.js';

export interface DrainState {
  /** True from the drain's start: /readyz fails. */
  draining: boolean;
}

export type DrainPhase = 'readiness failing' | 'keep-alive tail' | 'listener closed' | 'connections closed';

export interface DrainOptions {
  /** How long /readyz fails while the listener still serves (IMGRELAY_DRAIN_DELAY_MS). */
  delayMs: number;
  /** After the listener closed, how long in-flight requests may take (IMGRELAY_SHUTDOWN_TIMEOUT_MS). */
  deadlineMs: number;
  /** Told as each phase begins (the entry logs it, so operators and tests see when the port is free). */
  onPhase?: (phase: DrainPhase) => void;
}

/** Longest keep-alive tail before the listener closes; also the most the quiet wait may add to the delay. */
const SETTLE_MS = 1000;
/** No new connection for this long: nothing is left in the kernel's accept queue to reset. */
const QUIET_MS = 200;
/** An idle connection is closed once idle this long (its client is not looping on it). */
const IDLE_GRACE_MS = 1000;
const SWEEP_MS = 50;

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

type HttpSocket = Socket & { _httpMessage?: ServerResponse | null };

/** Drains and closes `server` as described above; resolves once every connection is gone. */
export async function drainServer(server: Server, state: DrainState, options: DrainOptions): Promise<void> {
  const phase = options.onPhase ?? (() => {});
  state.draining = true;
  const activity = trackActivity(server);
  const settleMs = Math.min(SETTLE_MS, Math.floor(options.delayMs / 4));
  activity.closeAfterResponse(true);
  if (options.delayMs > 0) phase('readiness failing');
  await sleep(options.delayMs - settleMs);
  if (options.delayMs > 0) {
    phase('keep-alive tail');
    activity.closeAfterResponse(false);
    await sleep(settleMs);
    await activity.quiet(QUIET_MS, SETTLE_MS);
  }
  activity.closeAfterResponse(true);
  await closeListener(server, activity, Math.min(IDLE_GRACE_MS, options.delayMs), options.deadlineMs, phase);
  activity.stop();
  phase('connections closed');
}

interface Activity {
  /** Every answer from now on (those under way too) carries `Connection: close`, or none does. */
  closeAfterResponse(on: boolean): void;
  /** Resolves once no connection was accepted for `quietMs`, or after `maxMs`. */
  quiet(quietMs: number, maxMs: number): Promise<void>;
  /** When the socket last accepted, started or finished a request (the drain's start for sockets older than it). */
  lastActive(socket: Socket): number;
  stop(): void;
}

function trackActivity(server: Server): Activity {
  const started = performance.now();
  const last = new WeakMap<Socket, number>();
  const closing = connectionCloseSwitch(server);
  let lastAccept = -Infinity;
  const onConnection = (socket: Socket) => {
    lastAccept = performance.now();
    last.set(socket, lastAccept);
  };
  const onRequest = (req: IncomingMessage, res: ServerResponse) => {
    const socket = req.socket;
    last.set(socket, performance.now());
    closing.apply(res);
    res.once('finish', () => last.set(socket, performance.now()));
  };
  server.prependListener('request', onRequest);
  server.prependListener('connection', onConnection);
  return {
    closeAfterResponse: closing.set,
    quiet: async (quietMs, maxMs) => {
      const until = performance.now() + maxMs;
      for (;;) {
        // Checked right after a poll phase, which accepted whatever the kernel held: the listener closes this tick.
        await new Promise((resolve) => setImmediate(resolve));
        const now = performance.now();
        if (now - lastAccept >= quietMs || now >= until) return;
        await sleep(quietMs / 4);
      }
    },
    lastActive: (socket) => last.get(socket) ?? started,
    stop: () => {
      server.off('request', onRequest);
      server.off('connection', onConnection);
    },
  };
}

/**
 * `Connection: close` on or off for every answer whose headers are not out yet: new ones, and those under way (a
 * transform started before the drain). Node then closes the socket once the answer is sent (`shouldKeepAlive`,
 * public since v0.x). Only answers this switch closed get keep-alive back: a client that asked to close keeps it.
 */
function connectionCloseSwitch(server: Server) {
  let on = false;
  const forced = new WeakSet<ServerResponse>();
  const close = (res: ServerResponse) => {
    if (!res.shouldKeepAlive) return;
    res.shouldKeepAlive = false;
    forced.add(res);
  };
  return {
    apply: (res: ServerResponse) => (on ? close(res) : undefined),
    set: (closing: boolean) => {
      on = closing;
      for (const socket of connectionSockets(server, 'all') ?? []) {
        const response = (socket as HttpSocket)._httpMessage;
        if (!response || response.headersSent) continue;
        if (closing) close(response);
        else if (forced.delete(response)) response.shouldKeepAlive = true;
      }
    },
  };
}

/**
 * Stops accepting without Node's `server.close()`, which also closes every idle connection at once (including one
 * accepted a moment ago whose request is still on its way); idle ones are closed here after their grace instead.
 */
async function closeListener(server: Server, activity: Activity, graceMs: number, deadlineMs: number,
  phase: (phase: DrainPhase) => void): Promise<void> {
  const closed = new Promise<void>((resolve) => NetServer.prototype.close.call(server, () => resolve()));
  phase('listener closed');
  const sweep = () => closeIdle(server, activity, graceMs);
  const sweeper = setInterval(sweep, SWEEP_MS);
  sweep();
  const deadline = setTimeout(() => server.closeAllConnections(), deadlineMs);
  await closed;
  clearInterval(sweeper);
  clearTimeout(deadline);
  // http.Server's own close clears its header-deadline timer; the listener is already closed, so it says so.
  server.close(() => {});
}

function closeIdle(server: Server, activity: Activity, graceMs: number): void {
  const all = connectionSockets(server, 'all');
  const idle = connectionSockets(server, 'idle');
  if (!all || !idle) return server.closeIdleConnections(); // Node's private list is gone: the public call, no grace
  const between = new Set(idle);
  const now = performance.now();
  for (const socket of all) {
    const response = (socket as HttpSocket)._httpMessage;
    // Node's "idle" means the last request was read whole (its answer may still be under way); a connection that
    // never sent a byte counts as waiting for headers there, yet it is just as unused.
    const unused = between.has(socket) ? !response || response.finished : !response && socket.bytesRead === 0;
    if (unused && !socket.destroyed && now - activity.lastActive(socket) >= graceMs) socket.destroy();
  }
}
