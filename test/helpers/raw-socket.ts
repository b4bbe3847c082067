/** Raw-socket clients (node:net) for attacking a listener, and polling the server's own socket counts. */
import { type Socket, connect } from 'node:net';
import type { SocketStats } from '../../src/http/node-server.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export function open(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => resolve(socket));
    socket.once('error', reject);
  });
}

/** Collects what the server sends until it closes the socket; `ms` is how long after `since` the close came. */
export function untilClosed(socket: Socket, since = performance.now()): Promise<{ text: string; ms: number }> {
  const chunks: Buffer[] = [];
  socket.on('data', (chunk: Buffer) => chunks.push(chunk));
  socket.on('error', () => {});
  return new Promise((resolve) => socket.once('close', () =>
    resolve({ text: Buffer.concat(chunks).toString('latin1'), ms: performance.now() - since })));
}

/** Sends `raw` on a fresh connection and returns the server's answer (status, lower-cased headers, parsed body). */
export async function rawExchange(port: number, raw: string | Buffer) {
  const socket = await open(port);
  const closed = untilClosed(socket);
  socket.write(raw);
  const { text } = await closed;
  const [head, body] = [text.slice(0, text.indexOf('\r\n\r\n')), text.slice(text.indexOf('\r\n\r\n') + 4)];
  const [statusLine, ...lines] = head.split('\r\n');
  const headers = Object.fromEntries(lines.map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]));
  const problem = headers['content-type'] === 'application/problem+json';
  return { status: Number(statusLine.split(' ')[1]), headers, body: problem ? JSON.parse(body) as Record<string, unknown> : {} };
}

/** Polls `read` until `done` holds or `ms` passes; returns the last value and when it held. */
export async function waitUntil(read: () => SocketStats, done: (s: SocketStats) => boolean, ms: number) {
  const started = performance.now();
  let stats = read();
  while (!done(stats) && performance.now() - started < ms) {
    await sleep(25);
    stats = read();
  }
  return { stats, ms: performance.now() - started };
}

