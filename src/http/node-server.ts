/**
 * Node only: the HTTP server both listeners (public and admin) run on, with every socket bounded.
 *
 * A socket costs a file descriptor, kernel buffers and a parser whether or not it ever sends a request, so each
 * state a connection can sit in has its own deadline, and their number has a cap:
 * - receiving headers: `headersTimeoutMs`, checked every `checkIntervalMs` (Node's default check runs every 30 s,
 *   which let a trickling client hold its socket ~90 s when the bound said 66);
 * - receiving the whole request: `requestTimeoutMs`;
 * - idle between keep-alive requests: `keepAliveTimeoutMs`, and idle sockets are the first to go at the cap;
 * - writing a response the client does not read: `writeTimeoutMs` without progress (checked ≥ 4 times per
 *   deadline), then the socket is reset;
 * - at most `maxConnections` open; the next one gets a 503 problem (an idle connection is closed to make room first).
 * A request the parser refuses (malformed, URL or headers too large, too slow) gets a problem+json answer written
 * straight to the socket (400/414/431/408), in the same shape as every other error (src/http/problem.ts).
 *
 * The memory-hit fast path is untouched: everything here runs per connection or on a timer, never per request.
 */
import { type RequestListener, type Server, STATUS_CODES, createServer } from 'node:http';
import type { Socket } from 'node:net';
import type { Config } from '../config.js';
import { RelayError } from '../errors.js';
import { problemBody, problemHeaders } from './problem.js';

export type SocketLimits = Config['sockets'];

/** What the guards did since start: `open` is the live count the cap applies to. */
export interface SocketStats {
  open: number;
  /** Connections over the cap answered 503. */
  rejected: number;
  /** Idle keep-alive connections closed to make room under the cap. */
  evictedIdle: number;
  /** Responses cut because the client stopped reading. */
  writeStalls: number;
  /** Requests the parser refused (malformed, too large, too slow), answered 4xx. */
  clientErrors: number;
}

export interface HardenedServer {
  server: Server;
  stats(): SocketStats;
}

export interface HardenedOptions {
  /** The admin listener's answers are same-origin only: its raw problems carry no CORS header either. */
  sameOrigin?: boolean;
}

/**
 * Over the cap, this many more connections at a time get a 503 answer; beyond them the kernel-level accept drops
 * them silently (Node's `maxConnections`), so a connection flood cannot make the refusals themselves unbounded.
 */
const OVERFLOW_ANSWERS = 64;
/** A refused connection may take this long to read its answer before it is closed anyway. */
const REFUSAL_LINGER_MS = 1000;

/** How often Node checks header/request deadlines: often enough that the bound is real, ≤ 1 s past it. */
export function checkIntervalMs(limits: SocketLimits): number {
  return Math.max(50, Math.min(1000, Math.floor(limits.headersTimeoutMs / 4)));
}

export function createHardenedServer(listener: RequestListener, limits: SocketLimits, options: HardenedOptions = {})
  : HardenedServer {
  const server = createServer({
    maxHeaderSize: limits.maxHeaderBytes,
    headersTimeout: limits.headersTimeoutMs,
    requestTimeout: limits.requestTimeoutMs,
    connectionsCheckingInterval: checkIntervalMs(limits),
    keepAliveTimeout: limits.keepAliveTimeoutMs,
  }, listener);
  const stats: SocketStats = { open: 0, rejected: 0, evictedIdle: 0, writeStalls: 0, clientErrors: 0 };
  const problem = (error: RelayError) => rawProblem(error, options.sameOrigin);
  const open = guardConnectionCount(server, limits.maxConnections, stats, problem(overloaded()));
  guardWrites(server, open, limits.writeTimeoutMs, stats);
  server.on('clientError', (error: ParserError, socket: Socket) =>
    answerClientError(socket, () => problem(clientErrorProblem(error, limits.maxHeaderBytes)), error.code, stats));
  return { server, stats: () => ({ ...stats, open: open.size }) };
}

export function listenHardened(listener: RequestListener, limits: SocketLimits, port: number, host: string,
  options: HardenedOptions = {}): Promise<HardenedServer> {
  return new Promise((resolve, reject) => {
    const hardened = createHardenedServer(listener, limits, options);
    hardened.server.once('error', reject);
    hardened.server.listen(port, host, () => resolve(hardened));
  });
}

/** Node's private view of a connection (stable since Node 18; every use below degrades safely without it). */
type HttpSocket = Socket & { _httpMessage?: { headersSent: boolean } | null;
  _handle?: { writeQueueSize?: number } | null };
type ParserError = Error & { code?: string; rawPacket?: Buffer };

/**
 * Counts connections and applies the cap before Node's HTTP machinery sees the socket (so a refused socket
 * never reaches a parser or the app): Node's own connection listener is taken off and called only for accepted ones.
 */
function guardConnectionCount(server: Server, max: number, stats: SocketStats, refusal: string): Set<Socket> {
  const httpListeners = server.listeners('connection') as ((socket: Socket) => void)[];
  server.removeAllListeners('connection');
  server.maxConnections = max + OVERFLOW_ANSWERS;
  const open = new Set<Socket>();
  server.on('connection', (socket: Socket) => {
    if (open.size >= max && !evictIdle(server, open, stats)) return refuse(socket, stats, refusal);
    open.add(socket);
    socket.once('close', () => open.delete(socket));
    for (const listener of httpListeners) listener.call(server, socket);
  });
  return open;
}

/**
 * Closes one idle keep-alive connection (between requests) to make room: its client reconnects at the cost of a
 * handshake, while refusing the new one would fail a request. Uses Node's connection list, which knows which
 * connections are between requests; without it, closes every idle one through the public API.
 */
function evictIdle(server: Server, open: Set<Socket>, stats: SocketStats): boolean {
  const idle = connectionSockets(server);
  if (!idle) {
    server.closeIdleConnections();
    for (const socket of open) if (socket.destroyed) open.delete(socket);
    return open.size < server.maxConnections - OVERFLOW_ANSWERS;
  }
  const victim = idle.find((socket) => !socket.destroyed && !(socket as HttpSocket)._httpMessage);
  if (!victim) return false;
  victim.destroy();
  open.delete(victim);
  stats.evictedIdle++;
  return true;
}

/**
 * The sockets of Node's connection list: `idle` ones are between requests (or before their first), `all` every one
 * with an HTTP parser; undefined if that private list is gone (stable since Node 18).
 */
export function connectionSockets(server: Server, which: 'idle' | 'all' = 'idle'): Socket[] | undefined {
  const key = Object.getOwnPropertySymbols(server).find((symbol) => symbol.description === 'http.server.connections');
  const list = key && (server as unknown as Record<symbol, Record<string, (() => { socket?: Socket }[]) | undefined>>)[key];
  const read = list?.[which];
  if (typeof read !== 'function') return undefined;
  return read.call(list).flatMap((parser) => (parser.socket ? [parser.socket] : []));
}

const overloaded = () => new RelayError('E_OVERLOADED', 'Too many open connections; retry shortly', { retryAfter: 1 });

function refuse(socket: Socket, stats: SocketStats, refusal: string): void {
  stats.rejected++;
  socket.on('error', () => {});
  socket.resume(); // discard whatever request it sends: no parser is attached
  socket.end(refusal);
  const timer = setTimeout(() => socket.destroy(), REFUSAL_LINGER_MS);
  socket.once('close', () => clearTimeout(timer));
}

/** What a socket still has to hand to the kernel: bytes in its stream buffer, and in libuv's queue (partial writes). */
export interface WriteBacklog {
  buffered: number;
  queued: number;
}

/** Nothing left the backlog since `before` (it may have grown: more queued, nothing sent). */
export function noWriteProgress(before: WriteBacklog, now: WriteBacklog): boolean {
  return now.buffered >= before.buffered && now.queued >= before.queued;
}

const backlogOf = (socket: HttpSocket): WriteBacklog =>
  ({ buffered: socket.writableLength, queued: socket._handle?.writeQueueSize ?? 0 });

/**
 * The write deadline: one sweep over the open connections a few times per deadline, no per-request work (a socket
 * timer would be re-armed on every request and refreshed on every write). A socket whose backlog has not shrunk for
 * `ms` is reset; a slow client that reads is making progress and is never cut, and a connection with nothing to
 * write (the service still computing its answer) is left to the fetch and transform deadlines.
 */
function guardWrites(server: Server, open: Set<Socket>, ms: number, stats: SocketStats): void {
  const stuck = new WeakMap<Socket, { backlog: WriteBacklog; since: number }>();
  const sweep = () => {
    const now = performance.now();
    for (const socket of open) {
      const backlog = backlogOf(socket);
      const mark = stuck.get(socket);
      if (backlog.buffered + backlog.queued === 0) {
        if (mark) stuck.delete(socket);
      } else if (!mark || !noWriteProgress(mark.backlog, backlog)) {
        stuck.set(socket, { backlog, since: now });
      } else if (now - mark.since >= ms) {
        stats.writeStalls++;
        open.delete(socket);
        reset(socket);
      }
    }
  };
  const timer = setInterval(sweep, Math.max(50, Math.min(1000, Math.floor(ms / 4)))).unref();
  server.once('close', () => clearInterval(timer));
}

/** A reset frees the kernel's send buffer at once; a close would leave it draining to a client that never reads. */
function reset(socket: Socket): void {
  try {
    socket.resetAndDestroy();
  } catch {
    socket.destroy();
  }
}

/** Which problem a parser error deserves; exported for its unit test. */
export function clientErrorProblem(error: ParserError, maxHeaderBytes: number): RelayError {
  switch (error.code) {
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return new RelayError('E_REQUEST_TIMEOUT', 'The request did not arrive in time');
    case 'HPE_HEADER_OVERFLOW':
      return requestLineTooLong(error.rawPacket, maxHeaderBytes)
        ? new RelayError('E_URL_TOO_LONG', `The request line is longer than ${maxHeaderBytes} bytes`)
        : new RelayError('E_HEADERS_TOO_LARGE', `The request headers are larger than ${maxHeaderBytes} bytes`);
    default:
      return new RelayError('E_BAD_REQUEST', `Malformed HTTP request${error.code ? ` (${error.code})` : ''}`);
  }
}

/**
 * The URL counts against the header limit in Node's parser; when the packet that overflowed starts the request
 * and its request line alone reaches the limit, the URL is what is too long (414), otherwise the headers (431).
 */
function requestLineTooLong(packet: Buffer | undefined, maxHeaderBytes: number): boolean {
  if (!packet || !/^[A-Z]+ /.test(packet.subarray(0, 16).toString('latin1'))) return false;
  const end = packet.indexOf('\r\n');
  return end < 0 || end >= maxHeaderBytes;
}

const answered = new WeakSet<Socket>();

function answerClientError(socket: HttpSocket, answer: () => string, code: string | undefined, stats: SocketStats): void {
  // A parser in error keeps failing on later data; only the first failure is answered.
  if (answered.has(socket)) return void socket.destroy();
  answered.add(socket);
  stats.clientErrors++;
  if (code === 'ECONNRESET' || !socket.writable || socket._httpMessage?.headersSent) return void socket.destroy();
  socket.end(answer());
  socket.destroySoon();
}

/** A whole HTTP/1.1 problem response as bytes, for sockets that have no ServerResponse (yet, or ever). */
export function rawProblem(error: RelayError, sameOrigin = false): string {
  const body = problemBody(error);
  const headers: Record<string, string> = { ...problemHeaders(error, { negativeTtlS: 0 }),
    'content-length': String(Buffer.byteLength(body)), connection: 'close' };
  if (sameOrigin) delete headers['access-control-allow-origin'];
  const lines = Object.entries(headers).map(([name, value]) => `${name}: ${value}\r\n`).join('');
  return `HTTP/1.1 ${error.status} ${STATUS_CODES[error.status] ?? error.title}\r\n${lines}\r\n${body}`;
}
