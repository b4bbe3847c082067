/**
 * Freshness end to end: expired entries are served STALE while a conditional request revalidates them; a 304
 * refreshes without a body; a changed source replaces the bytes; a failing origin keeps the stale copy serving.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type TestOrigin, startOrigin } from './helpers/origin.js';
import { ZAKER, bootImgrelay, bytes, digest, zakerAt } from './helpers/imgrelay.js';
import type { RunningNode } from '../src/node.js';

const first = readFileSync(new URL('./fixtures/icc-odd.jpg', import.meta.url));
const second = readFileSync(new URL('./fixtures/sample.webp', import.meta.url));

let origin: TestOrigin;
let relay: RunningNode;
/** What the origin currently serves; tests swap it. */
let current: { body: Buffer; etag: string; failing: boolean };
let bodiesSent = 0;

beforeAll(async () => {
  origin = await startOrigin();
  current = { body: first, etag: '"v1"', failing: false };
  origin.route('/fresh.jpg', (req, res) => {
    if (current.failing) return void res.writeHead(503).end('down');
    if (req.headers['if-none-match'] === current.etag) return void res.writeHead(304, { etag: current.etag }).end();
    bodiesSent++;
    res.writeHead(200, { 'content-type': 'image/jpeg', etag: current.etag, 'cache-control': 'max-age=1' }).end(current.body);
  });
  relay = await bootImgrelay({ ...zakerAt(origin.port), IMGRELAY_MIN_TTL_S: '0' });
});
afterAll(async () => {
  await relay.close();
  await origin.close();
});

const url = () => `${relay.url}/?http://${ZAKER}/fresh.jpg`;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Requests until `accept` holds (bounded): revalidation runs behind the response that triggered it. */
async function until(accept: (r: Response, body: Uint8Array) => boolean, boundMs = 10_000): Promise<Response> {
  const deadline = Date.now() + boundMs;
  for (;;) {
    const response = await fetch(url());
    if (accept(response, await bytes(response))) return response;
    if (Date.now() > deadline) throw new Error(`condition not met within ${boundMs} ms`);
    await sleep(100);
  }
}

it('revalidates with a conditional request, serves stale meanwhile, and follows a changed source', async () => {
  const miss = await fetch(url());
  expect(miss.headers.get('x-cache')).toBe('MISS');
  expect(digest(await bytes(miss))).toBe(digest(first));
  await sleep(1100);

  // Expired: served at once, marked STALE; the origin answers the conditional request with 304 (no body).
  const stale = await fetch(url());
  expect(stale.headers.get('x-cache')).toBe('STALE');
  expect(digest(await bytes(stale))).toBe(digest(first));
  await until((r) => r.headers.get('x-cache') === 'HIT-MEMORY');
  expect(bodiesSent).toBe(1);
  expect(origin.requests.some((r) => r.headers['if-none-match'] === '"v1"')).toBe(true);

  // The origin changes: after expiry the new bytes replace the old.
  current = { body: second, etag: '"v2"', failing: false };
  await sleep(1100);
  const replaced = await until((_r, body) => digest(body) === digest(second));
  expect(replaced.headers.get('content-type')).toBe('image/webp');
  expect(bodiesSent).toBe(2);
});

it('keeps serving the stale copy when the origin fails (stale-if-error)', async () => {
  await until((_r, body) => digest(body) === digest(current.body));
  current = { ...current, failing: true };
  await sleep(1100);
  for (let i = 0; i < 3; i++) {
    const response = await fetch(url());
    expect(response.status).toBe(200);
    expect(response.headers.get('x-cache')).toBe('STALE');
    expect(createHash('sha256').update(await bytes(response)).digest('hex')).toBe(digest(current.body));
    await sleep(150);
  }
});
