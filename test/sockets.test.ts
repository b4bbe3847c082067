/**
 * Socket bounds (issue #14, item 5), attacked with raw sockets (node:net) against the real service: trickling
 * headers, silent connections, a reader that stops reading, idle keep-alive, a connection flood, malformed and
 * oversized requests — on the public listener and the admin listener. Each test shows the socket (the resource)
 * released: the server's own count of open connections returns to its baseline within the configured bound + slack.
 */
import { randomBytes } from 'node:crypto';
import { type Socket, connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SocketStats } from '../src/http/node-server.js';
import type { RunningNode } from '../src/node.js';
import { type TestOrigin, startOrigin } from './helpers/origin.js';
import { ZAKER, bootImgrelay, digest, zakerAt } from './helpers/imgrelay.js';
import { open, rawExchange, untilClosed, waitUntil } from './helpers/raw-socket.js';

const HEADERS_MS = 1000;
/** Unlike the header and idle bounds, so that each test shows its own deadline at work. */
const WRITE_MS = 1500;
const IDLE_MS = 1000;
/** Generous: the machine is shared by eight engineers; the bounds under test are what must hold, not speed. */
const SLACK_MS = 1500;
const REQUEST_MS = 3000;
const BOUNDS = { IMGRELAY_HEADERS_TIMEOUT_MS: String(HEADERS_MS), IMGRELAY_REQUEST_TIMEOUT_MS: String(REQUEST_MS),
  IMGRELAY_KEEPALIVE_TIMEOUT_MS: String(IDLE_MS), IMGRELAY_WRITE_TIMEOUT_MS: String(WRITE_MS) };

/** 12 MiB with PNG magic bytes: relayed as is (legacy form), and larger than loopback's socket buffers together. */
const BIG = Buffer.concat([Buffer.from('89504e470d0a1a0a', 'hex'), randomBytes(12 * 1024 * 1024)]);

function expectProblem(answer: Awaited<ReturnType<typeof rawExchange>>, status: number, code: string): void {
  expect(answer.status).toBe(status);
  expect(answer.headers['content-type']).toBe('application/problem+json');
  expect(answer.headers['cache-control']).toBe('no-store');
  expect(answer.headers.connection).toBe('close');
  expect(answer.body).toMatchObject({ status, code });
}

/** Writes a request's headers a few bytes at a time, forever (until the socket closes). */
function trickle(socket: Socket, path = '/healthz'): void {
  socket.write(`GET ${path} HTTP/1.1\r\nHost: x\r\n`);
  const timer = setInterval(() => socket.writable && socket.write('X-A: b\r\n'), 100);
  socket.once('close', () => clearInterval(timer));
}

let origin: TestOrigin;
beforeAll(async () => {
  origin = await startOrigin();
  origin.serve('/big.png', BIG, 'image/png');
});
afterAll(() => origin.close());

/** The attacks every listener must withstand, given how to read its socket count. */
interface Target {
  port: number;
  stats: () => SocketStats;
  /** A GET route that answers 200. */
  page: string;
  /** A POST route that waits for its body (with the header lines it needs), if the listener has one. */
  upload?: { path: string; headers: string };
  cors?: string;
}

function listenerBounds(label: string, target: () => Target) {
  it(`${label}: a header-trickling client is answered 408 and cut within the header deadline`, async () => {
    const { port, stats } = target();
    const baseline = stats().open;
    const socket = await open(port);
    const closed = untilClosed(socket);
    trickle(socket, target().page);
    const { text, ms } = await closed;
    expect(ms).toBeLessThan(HEADERS_MS + SLACK_MS);
    expect(text).toMatch(/^HTTP\/1\.1 408 /);
    expect(text).toContain('"code":"E_REQUEST_TIMEOUT"');
    expect((await waitUntil(stats, (s) => s.open <= baseline, 500)).stats.open).toBe(baseline);
  });

  it(`${label}: a connection that never sends a byte is closed within the header deadline`, async () => {
    const { port, stats } = target();
    const baseline = stats().open;
    const socket = await open(port);
    expect(stats().open).toBe(baseline + 1);
    const { ms } = await untilClosed(socket);
    expect(ms).toBeLessThan(HEADERS_MS + SLACK_MS);
    expect((await waitUntil(stats, (s) => s.open <= baseline, 500)).stats.open).toBe(baseline);
  });

  it(`${label}: a request whose body trickles is cut within the request deadline`, async () => {
    const { port, stats, upload } = target();
    const baseline = stats().open;
    const socket = await open(port);
    const closed = untilClosed(socket);
    socket.write(`POST ${upload?.path ?? '/'} HTTP/1.1\r\nHost: x\r\n${upload?.headers ?? ''}` +
      'Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n');
    const timer = setInterval(() => socket.writable && socket.write(' '), 100);
    const { text, ms } = await closed;
    clearInterval(timer);
    expect(ms).toBeLessThan(REQUEST_MS + SLACK_MS);
    if (upload) {
      // A route that reads the body waits for it until the request deadline, then the client gets a 408.
      expect(ms).toBeGreaterThan(REQUEST_MS * 0.8);
      expect(text).toMatch(/^HTTP\/1\.1 408 /);
      expect(text).toContain('"code":"E_REQUEST_TIMEOUT"');
    }
    expect((await waitUntil(stats, (s) => s.open <= baseline, 500)).stats.open).toBe(baseline);
  });

  it(`${label}: an idle keep-alive connection is closed after the idle bound, not before`, async () => {
    const { port, stats } = target();
    const baseline = stats().open;
    const socket = await open(port);
    const closed = untilClosed(socket);
    socket.write(`GET ${target().page} HTTP/1.1\r\nHost: x\r\n\r\n`);
    const answeredAt = await new Promise<number>((resolve) => socket.once('data', () => resolve(performance.now())));
    const { text } = await closed;
    const idleMs = performance.now() - answeredAt;
    expect(text).toMatch(/^HTTP\/1\.1 200 /);
    expect(idleMs).toBeGreaterThan(IDLE_MS * 0.8);
    // Node waits 1 s past the advertised `Keep-Alive: timeout=` before closing (so a client never races it).
    expect(idleMs).toBeLessThan(IDLE_MS + 1000 + SLACK_MS);
    expect((await waitUntil(stats, (s) => s.open <= baseline, 500)).stats.open).toBe(baseline);
  });

  it(`${label}: a malformed request line gets 400 problem+json`, async () => {
    const answer = await rawExchange(target().port, 'GET / HTTP/9.x\r\n\r\n');
    expectProblem(answer, 400, 'E_BAD_REQUEST');
    expect(answer.headers['access-control-allow-origin']).toBe(target().cors);
    expectProblem(await rawExchange(target().port, 'NOT A REQUEST\r\n\r\n'), 400, 'E_BAD_REQUEST');
  });

  it(`${label}: a URL longer than the header limit gets 414 problem+json`, async () => {
    const answer = await rawExchange(target().port, `GET /?url=http://${ZAKER}/${'a'.repeat(20_000)} HTTP/1.1\r\nHost: x\r\n\r\n`);
    expectProblem(answer, 414, 'E_URL_TOO_LONG');
  });

  it(`${label}: headers larger than the limit get 431 problem+json`, async () => {
    const answer = await rawExchange(target().port, `GET ${target().page} HTTP/1.1\r\nHost: x\r\nX-Big: ${'b'.repeat(20_000)}\r\n\r\n`);
    expectProblem(answer, 431, 'E_HEADERS_TOO_LARGE');
  });
}

describe('public listener bounds', () => {
  let node: RunningNode;
  beforeAll(async () => { node = await bootImgrelay({ ...zakerAt(origin.port), ...BOUNDS }); });
  afterAll(() => node.close());

  listenerBounds('public', () => ({ port: node.port, stats: node.sockets, page: '/healthz', cors: '*' }));

  it('a client that requests a large image and never reads is reset within the write deadline', async () => {
    const path = `/?http://${ZAKER}/big.png`;
    const primed = await fetch(node.url + path);
    expect(digest(new Uint8Array(await primed.arrayBuffer()))).toBe(digest(BIG));
    await waitUntil(node.sockets, (s) => s.open === 0, 2 * IDLE_MS + SLACK_MS);
    const before = node.sockets();
    const socket = await open(node.port);
    socket.pause(); // the attack: ask, then never read
    socket.write(`GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`);
    const cut = await waitUntil(node.sockets, (s) => s.open === before.open && s.writeStalls > before.writeStalls,
      WRITE_MS + 2 * SLACK_MS);
    expect(cut.stats.writeStalls).toBe(before.writeStalls + 1);
    expect(cut.stats.open).toBe(before.open);
    expect(cut.ms).toBeGreaterThan(WRITE_MS * 0.8);
    // What the client gets when it finally reads: less than the body, then the reset.
    const received = await new Promise<number>((resolve) => {
      let bytes = 0;
      socket.on('data', (chunk: Buffer) => { bytes += chunk.length; });
      socket.on('error', () => {});
      socket.once('close', () => resolve(bytes));
      socket.resume();
    });
    expect(received).toBeLessThan(BIG.length);
  });

  it('a slow but steady reader of a large image gets all of it (progress is not a stall)', async () => {
    const before = node.sockets();
    const socket = await open(node.port);
    socket.pause();
    socket.write(`GET /?http://${ZAKER}/big.png HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
    const chunks: Buffer[] = [];
    let budget = 0;
    socket.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      budget -= chunk.length;
      if (budget <= 0) socket.pause();
    });
    // Reads 1.5 MiB, then nothing for 0.6 s (under the 1 s write deadline), again and again.
    const pacer = setInterval(() => { budget = 1.5 * 1024 * 1024; socket.resume(); }, 600);
    await new Promise((resolve) => socket.once('close', resolve));
    clearInterval(pacer);
    const text = Buffer.concat(chunks);
    const body = text.subarray(text.indexOf('\r\n\r\n') + 4);
    expect(digest(new Uint8Array(body))).toBe(digest(BIG));
    expect(node.sockets().writeStalls).toBe(before.writeStalls);
  });
});

describe('public connection cap', () => {
  const CAP = 4;
  let node: RunningNode;
  beforeAll(async () => {
    node = await bootImgrelay({ ...zakerAt(origin.port), IMGRELAY_MAX_CONNECTIONS: String(CAP),
      IMGRELAY_HEADERS_TIMEOUT_MS: '10000', IMGRELAY_KEEPALIVE_TIMEOUT_MS: '10000' });
  });
  afterAll(() => node.close());

  it('the connection over the cap gets 503 problem+json while the connections in use still work', async () => {
    const busy = await Promise.all(Array.from({ length: CAP }, () => open(node.port)));
    for (const socket of busy) socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\n'); // mid-request: not idle
    await waitUntil(node.sockets, (s) => s.open === CAP, 1000);
    const refused = await rawExchange(node.port, 'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
    expectProblem(refused, 503, 'E_OVERLOADED');
    expect(refused.headers['retry-after']).toBe('1');
    expect(node.sockets()).toMatchObject({ open: CAP, rejected: 1 });
    const answers = busy.map((socket) => untilClosed(socket));
    for (const socket of busy) socket.end('Connection: close\r\n\r\n');
    for (const { text } of await Promise.all(answers)) expect(text).toMatch(/^HTTP\/1\.1 200 /);
    expect((await waitUntil(node.sockets, (s) => s.open === 0, 1000)).stats.open).toBe(0);
  });

  it('a flood past the cap is answered for 64 connections, then dropped at accept: refusals stay bounded too', async () => {
    const busy = await Promise.all(Array.from({ length: CAP }, () => open(node.port)));
    for (const socket of busy) socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\n'); // mid-request: not idle
    await waitUntil(node.sockets, (s) => s.open === CAP, 1000);
    const before = node.sockets();
    // Clients that keep their side open after the answer, so every refused socket lingers its full second.
    const flood = await Promise.all(Array.from({ length: 100 }, () => new Promise<Socket>((resolve, reject) => {
      const socket = connect({ port: node.port, host: '127.0.0.1', allowHalfOpen: true }, () => resolve(socket));
      socket.once('error', reject);
    })));
    const answers = await Promise.all(flood.map((socket) => new Promise<string>((resolve) => {
      let text = '';
      socket.on('data', (chunk: Buffer) => { text += chunk.toString('latin1'); });
      socket.on('error', () => {});
      for (const event of ['end', 'close']) socket.once(event, () => resolve(text)); // the server's FIN or reset
    })));
    for (const socket of flood) socket.destroy();
    const answered = answers.filter((text) => text.startsWith('HTTP/1.1 503 ')).length;
    const dropped = answers.filter((text) => text === '').length;
    expect(answered + dropped).toBe(100);
    expect(answered).toBeGreaterThan(0);
    expect(answered).toBeLessThanOrEqual(64);
    expect(node.sockets()).toMatchObject({ open: CAP, rejected: before.rejected + answered });
    for (const socket of busy) socket.destroy();
    expect((await waitUntil(node.sockets, (s) => s.open === 0, 1000)).stats.open).toBe(0);
  });

  it('at the cap an idle keep-alive connection is closed to make room for a new client', async () => {
    const before = node.sockets();
    const idle = await Promise.all(Array.from({ length: CAP }, () => open(node.port)));
    const closed = idle.map((socket) => untilClosed(socket));
    for (const socket of idle) socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
    await Promise.all(idle.map((socket) => new Promise((resolve) => socket.once('data', resolve))));
    const fresh = await rawExchange(node.port, 'GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    expect(fresh.status).toBe(200);
    const after = node.sockets();
    expect(after.evictedIdle).toBe(before.evictedIdle + 1);
    expect(after.rejected).toBe(before.rejected);
    expect(after.open).toBeLessThanOrEqual(CAP);
    const first = await Promise.race(closed);
    expect(first.text).toMatch(/^HTTP\/1\.1 200 /);
    for (const socket of idle) socket.destroy();
  });
});

describe('admin listener bounds', () => {
  let node: RunningNode;
  const TOKEN = 'a-token-of-sixteen-chars';
  beforeAll(async () => { node = await bootImgrelay({ ...BOUNDS, IMGRELAY_ADMIN_TOKENS: TOKEN }); });
  afterAll(() => node.close());

  listenerBounds('admin', () => ({ port: node.admin.port, stats: node.admin.sockets, page: '/',
    upload: { path: '/purge', headers: `Authorization: Bearer ${TOKEN}\r\n` } }));
});
