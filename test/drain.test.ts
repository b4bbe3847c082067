/**
 * A restart under load, as a load balancer or a Service sees it (src/http/drain.ts): 8 keep-alive clients loop GETs
 * (memory hits and some misses) against the service as its own process; it gets SIGTERM mid-load, and a new one is
 * started on the same port once the old listener closed. A client may retry a refused connection (nothing listened
 * for a moment); a reset (a request sent and then the connection closed under it) is a dropped request.
 * Outcome: 0 resets, 0 non-200; /readyz fails while the old process still serves; what it answers while draining
 * carries `Connection: close` (memory hits on the fast path too); the old process exits within its bounds.
 * And the race Node's own `server.close()` loses, staged: a connection accepted just before the listener closes,
 * whose request arrives just after, is answered (`Connection: close`), not cut.
 */
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type TestOrigin, startOrigin } from './helpers/origin.js';
import { ZAKER, bootImgrelay, zakerAt } from './helpers/imgrelay.js';
import { type ChildService, startChildService } from './helpers/child-service.js';
import { open, untilClosed } from './helpers/raw-socket.js';
import pino from 'pino';
import { parseConfig } from '../src/config.js';
import { startNode } from '../src/node.js';

const DELAY_MS = 1500;
const SHUTDOWN_MS = 5000;
const CLIENTS = 8;
const small = readFileSync(new URL('./fixtures/sample.webp', import.meta.url));
const tiny = readFileSync(new URL('./fixtures/tiny-256-lossy.webp', import.meta.url));

interface Tally {
  ok: number; nonOk: number; resets: number; refused: number; errors: string[];
  /** Answers the old process sent in the first half of its delay: all of them, and those with `Connection: close`. */
  drainingAnswers: number; drainingClosed: number; drainingHits: number;
}

let origin: TestOrigin;
let signalled = Infinity;
/** When the old process said it began draining (its log line). */
let draining = Infinity;
const services: ChildService[] = [];
beforeAll(async () => {
  origin = await startOrigin();
  for (const name of ['a', 'b', 'c', 'd']) origin.serve(`/${name}.webp`, small, 'image/webp');
  origin.serve('/tiny.webp', tiny, 'image/webp');
});
afterAll(async () => {
  await Promise.all(services.map((service) => service.stop()));
  await origin.close();
});

const env = (port: number) => ({ ...zakerAt(origin.port), IMGRELAY_PORT: String(port),
  IMGRELAY_DRAIN_DELAY_MS: String(DELAY_MS), IMGRELAY_SHUTDOWN_TIMEOUT_MS: String(SHUTDOWN_MS) });

/** Mostly memory hits (4 small sources), 1 in 20 a new width (a transform): enough misses, few enough to queue none. */
function pathFor(client: number, i: number): string {
  const n = client * 1000 + i;
  if (i % 20 === 19) return `/?url=${encodeURIComponent(`http://${ZAKER}/tiny.webp`)}&w=${16 + (n % 200)}&q=${40 + Math.floor(n / 200) % 50}`;
  return `/?http://${ZAKER}/${'abcd'[(client + i) % 4]}.webp`;
}

const isRefused = (error: unknown) => (error as { code?: string }).code === 'ECONNREFUSED';

async function client(id: number, base: string, agent: Agent, tally: Tally, window: () => boolean, stop: () => boolean) {
  for (let i = 0; !stop(); i++) {
    try {
      const response = await request(`${base}${pathFor(id, i)}`, { dispatcher: agent });
      await response.body.arrayBuffer();
      if (response.statusCode === 200) tally.ok++;
      else {
        tally.nonOk++;
        tally.errors.push(`${response.statusCode} ${pathFor(id, i)} at ${(performance.now() - signalled).toFixed(0)} ms`);
      }
      if (window()) {
        tally.drainingAnswers++;
        if (response.headers.connection === 'close') tally.drainingClosed++;
        else tally.errors.push(`kept alive while draining: ${String(response.headers['x-cache'])} ${(performance.now() - signalled).toFixed(0)}`);
        if (String(response.headers['x-cache']).startsWith('HIT-MEMORY')) tally.drainingHits++;
      }
    } catch (error) {
      if (isRefused(error)) {
        tally.refused++;
        await new Promise((resolve) => setTimeout(resolve, 10)); // nothing listens for a moment: retry
        i--;
        continue;
      }
      tally.resets++;
      tally.errors.push(`${(error as Error).name}: ${(error as Error).message} (${(error as { code?: string }).code}) at ${(performance.now() - signalled).toFixed(0)} ms`);
    }
  }
}

/** Resolves once the process logs that its listener closed (the port is free to bind again). */
function listenerClosed(service: ChildService): Promise<void> {
  return new Promise((resolve) => {
    let out = '';
    const onData = (chunk: Buffer) => {
      out += chunk.toString();
      if (out.includes('"phase":"readiness failing"') && draining === Infinity) draining = performance.now();
      if (!out.includes('"phase":"listener closed"')) return;
      service.child.stdout!.off('data', onData);
      resolve();
    };
    service.child.stdout!.on('data', onData);
  });
}

describe('SIGTERM under keep-alive load, then a new process on the same port', () => {
  it('drops nothing: 0 resets, 0 non-200; /readyz fails while it serves; the old process exits within its bounds', async () => {
    const old = await startChildService(env(0));
    services.push(old);
    const base = old.url;
    const agent = new Agent({ connections: CLIENTS, keepAliveTimeout: 30_000, keepAliveMaxTimeout: 30_000 });
    const tally: Tally = { ok: 0, nonOk: 0, resets: 0, refused: 0, errors: [], drainingAnswers: 0, drainingClosed: 0,
      drainingHits: 0 };
    let stopping = false;
    // Answers read from 20 ms after the old process said it drains, to the middle of its delay.
    const window = () => performance.now() - draining > 20 && performance.now() - signalled < DELAY_MS / 2;
    const loops = Array.from({ length: CLIENTS }, (_, id) => client(id, base, agent, tally, window, () => stopping));
    await new Promise((resolve) => setTimeout(resolve, 1500));

    const exited = once(old.child, 'exit').then(([exitCode]) => ({ code: exitCode as number, at: performance.now() }));
    const closing = listenerClosed(old);
    signalled = performance.now();
    old.child.kill('SIGTERM');
    await new Promise((resolve) => setTimeout(resolve, 200));
    const ready = await fetch(`${base}/readyz`, { headers: { connection: 'close' } });
    expect(ready.status).toBe(503);
    expect(ready.headers.get('content-type')).toContain('application/problem+json');

    await closing;
    const closedAfterMs = performance.now() - signalled;
    const fresh = await startChildService(env(old.port));
    services.push(fresh);
    const okBeforeNew = tally.ok;
    await new Promise((resolve) => setTimeout(resolve, 1500));
    const { code, at } = await exited;
    const exitedAfterMs = at - signalled;
    stopping = true;
    await Promise.all(loops);
    await agent.close();

    console.log(`drain: ${tally.ok} × 200, ${tally.nonOk} non-200, ${tally.resets} resets, ${tally.refused} refused ` +
      `(retried); listener closed ${closedAfterMs.toFixed(0)} ms and process exited ${exitedAfterMs.toFixed(0)} ms ` +
      `after SIGTERM; ${tally.drainingClosed}/${tally.drainingAnswers} answers while draining had Connection: close ` +
      `(${tally.drainingHits} memory hits); ${tally.ok - okBeforeNew} answers once the new process was started`);
    expect(tally.errors).toEqual([]);
    expect(tally.resets).toBe(0);
    expect(tally.nonOk).toBe(0);
    expect(code).toBe(0);
    // The listener stays open through the delay (clients were still served), and everything ends within its bounds.
    expect(closedAfterMs).toBeGreaterThanOrEqual(DELAY_MS);
    expect(exitedAfterMs).toBeLessThan(DELAY_MS + SHUTDOWN_MS + 3000);
    expect(tally.drainingHits).toBeGreaterThan(0);
    expect(tally.drainingClosed).toBe(tally.drainingAnswers);
    expect(tally.ok - okBeforeNew).toBeGreaterThan(CLIENTS);
  }, 60_000);
});

describe('a connection accepted just before the listener closes', () => {
  it('is answered when its request arrives after the close; an unused one is closed after its grace, not held to the header deadline', async () => {
    const phases = new Map<string, number>();
    const logger = pino({ level: 'info' }, { write: (line: string) => {
      const entry = JSON.parse(line) as { msg: string; phase?: string };
      if (entry.msg === 'draining' && entry.phase) phases.set(entry.phase, performance.now());
    } });
    const node = await startNode(parseConfig({ IMGRELAY_HOST: '127.0.0.1', IMGRELAY_PORT: '0', IMGRELAY_ADMIN_PORT: '0',
      IMGRELAY_STORE: 'none' }), { logger });
    const phase = async (name: string) => {
      while (!phases.has(name)) await new Promise((resolve) => setTimeout(resolve, 5));
      return phases.get(name)!;
    };
    const idle = await open(node.port); // connected before the drain, never used
    const idleClosed = untilClosed(idle);
    const closing = node.close(2000);
    await phase('keep-alive tail');
    const late = await open(node.port); // accepted; its request is "still on its way"
    const answered = untilClosed(late);
    const listenerClosedAt = await phase('listener closed');
    late.write('GET /healthz HTTP/1.1\r\nHost: imgrelay.test\r\n\r\n');
    const { text } = await answered;
    expect(text).toMatch(/^HTTP\/1\.1 200 /);
    expect(text).toMatch(/\r\nConnection: close\r\n/i);
    // The unused connection is closed once idle for the grace (1 s), not at once, not never; then close() ends.
    await idleClosed;
    const idleClosedAfter = performance.now() - listenerClosedAt;
    await closing;
    expect(idleClosedAfter).toBeLessThan(1000 + 1000);
    expect(node.sockets().open).toBe(0);
  }, 30_000);
});

describe('the shutdown deadline', () => {
  it('is one SHUTDOWN_TIMEOUT_MS from the listener close, shared by an in-flight request and a revalidation that hangs', async () => {
    const timeoutMs = 3000;
    const slowMs = 2500;
    const node = await bootImgrelay({ ...zakerAt(origin.port), IMGRELAY_SHUTDOWN_TIMEOUT_MS: String(timeoutMs),
      IMGRELAY_MIN_TTL_S: '0' });
    let fresh = true;
    origin.route('/revalidate.webp', (_req, res) => {
      if (!fresh) return; // the revalidation's fetch: never answered (the upstream deadline is 10 s)
      fresh = false;
      res.writeHead(200, { 'content-type': 'image/webp', 'cache-control': 'max-age=1' }).end(small);
    });
    origin.route('/slow-in-flight.webp', (_req, res) => {
      setTimeout(() => res.writeHead(200, { 'content-type': 'image/webp' }).end(small), slowMs);
    });
    const first = await fetch(`${node.url}/?http://${ZAKER}/revalidate.webp`);
    expect(first.headers.get('x-cache')).toBe('MISS');
    await first.arrayBuffer();
    await new Promise((resolve) => setTimeout(resolve, 1100));
    const stale = await fetch(`${node.url}/?http://${ZAKER}/revalidate.webp`);
    expect(stale.headers.get('x-cache')).toBe('STALE'); // its revalidation now waits on the origin, in the background
    await stale.arrayBuffer();
    const inFlight = fetch(`${node.url}/?http://${ZAKER}/slow-in-flight.webp`);
    while (origin.hits('/slow-in-flight.webp') === 0) await new Promise((resolve) => setTimeout(resolve, 10));

    const started = performance.now();
    await node.close(0);
    const tookMs = performance.now() - started;
    expect((await inFlight).status).toBe(200);
    // Each step used to get the whole timeout in turn: ~2.5 s for the request, then 3 s more for the revalidation.
    expect(tookMs).toBeLessThan(timeoutMs + 1200);
  }, 30_000);
});
