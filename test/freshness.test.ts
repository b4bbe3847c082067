/**
 * Freshness end to end: expired entries are served STALE while a conditional request revalidates them; a 304
 * refreshes without a body; a changed source replaces the bytes; a failing origin keeps the stale copy serving.
 * And what browsers and CDNs are told (src/http/cache-control.ts): Cache-Control and Age follow the entry, under
 * the configured ceiling, on the full path and on the fast hit path, in every URL form.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type TestOrigin, startOrigin } from './helpers/origin.js';
import { ZAKER, bootImgrelay, bytes, digest, zakerAt } from './helpers/imgrelay.js';
import type { RunningNode } from '../src/node.js';
import { STALE_MAX_AGE_S } from '../src/http/cache-control.js';
import { cacheKey, SOURCE_VARIANT } from '../src/cache/keys.js';

const first = readFileSync(new URL('./fixtures/icc-odd.jpg', import.meta.url));
const second = readFileSync(new URL('./fixtures/sample.webp', import.meta.url));

let origin: TestOrigin;
let relay: RunningNode;
/** A relay with the shipped freshness defaults. */
let defaults: RunningNode;
/** STALE_IF_ERROR_S=2: a failing origin is stood in for 2 s past expiry, no longer. */
let strict: RunningNode;
const YEAR = 365 * 86_400;
const DAY = 86_400;
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
  relay = await bootImgrelay({ ...zakerAt(origin.port), IMGRELAY_MIN_TTL_S: '0', IMGRELAY_STALE_IF_ERROR_S: '3600' });
  // The shipped defaults: MIN_TTL_S 3600, DEFAULT_TTL_S a day, Cache-Control ceiling 1 day browser / 30 days shared.
  defaults = await bootImgrelay(zakerAt(origin.port));
  strict = await bootImgrelay({ ...zakerAt(origin.port), IMGRELAY_MIN_TTL_S: '0', IMGRELAY_STALE_IF_ERROR_S: '2' });
  origin.serve('/sixty.jpg', first, 'image/jpeg', { 'cache-control': 'public, max-age=60' });
  origin.serve('/year.jpg', first, 'image/jpeg', { 'cache-control': `max-age=${YEAR}` });
  origin.serve('/silent.jpg', first, 'image/jpeg');
  origin.serve('/no-cache.jpg', first, 'image/jpeg', { 'cache-control': 'no-cache' });
  origin.serve('/aged.jpg', first, 'image/jpeg', { 'cache-control': 'max-age=60', age: '50' });
  origin.serve('/stale.jpg', first, 'image/jpeg', { 'cache-control': 'max-age=1' });
});
afterAll(async () => {
  await defaults.close();
  await strict.close();
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
    // What downstream caches may do with it is bounded too: STALE_IF_ERROR_S=3600 under the configured 604800.
    expect(directives(response)['stale-if-error']).toBe(3600);
    expect(kept(response).shared).toBeLessThanOrEqual(STALE_MAX_AGE_S);
    expect(createHash('sha256').update(await bytes(response)).digest('hex')).toBe(digest(current.body));
    await sleep(150);
  }
});

/** Cache-Control's directives by name (numbers, or true for flags). */
function directives(response: Response): Record<string, number | true> {
  return Object.fromEntries((response.headers.get('cache-control') ?? '').split(',').map((part) => {
    const [name, value] = part.trim().split('=');
    return [name, value === undefined ? true : Number(value)];
  }));
}

/** What an RFC 9111 cache keeps the response for, from now: directive − Age (shared caches read s-maxage first). */
function kept(response: Response): { shared: number; browser: number; age: number } {
  const d = directives(response);
  const age = Number(response.headers.get('age'));
  expect(response.headers.get('age')).toMatch(/^\d+$/);
  return { shared: Number(d['s-maxage'] ?? d['max-age']) - age, browser: Number(d['max-age']) - age, age };
}

const source = (name: string) => `http://${ZAKER}/${name}`;
/** The three URL forms of one source (the query and path forms resize it: a variant carries its source's age). */
const forms = (base: string, name: string) => [
  `${base}/?${source(name)}`,
  `${base}/?url=${encodeURIComponent(source(name))}&w=40`,
  `${base}/cdn-cgi/image/width=30/${source(name)}`,
];

async function get(url: string, headers: Record<string, string> = {}): Promise<Response> {
  const response = await fetch(url, { headers });
  await response.arrayBuffer();
  expect(response.status).toBe(response.status === 304 ? 304 : 200);
  return response;
}

describe('Cache-Control that browsers and CDNs see follows the entry', () => {
  // MIN_TTL_S=0 here: with the default 3600 imgrelay itself keeps the bytes an hour, and says so downstream.
  it('an upstream max-age=60: s-maxage and max-age of 60 with a growing Age, in every form, full and fast path', async () => {
    for (const url of forms(relay.url, 'sixty.jpg')) {
      const built = await get(url);
      expect(built.headers.get('x-cache')).toBe('MISS');
      expect(directives(built)).toMatchObject({ 'max-age': 60, 's-maxage': 60, 'stale-while-revalidate': DAY });
    }
    await sleep(1100);
    for (const url of forms(relay.url, 'sixty.jpg')) {
      const hit = await get(url); // a repeat: the Node fast path answers it
      expect(hit.headers.get('x-cache')).toBe('HIT-MEMORY');
      expect(directives(hit)).toMatchObject({ 'max-age': 60, 's-maxage': 60 });
      const { shared, browser, age } = kept(hit);
      expect(age).toBeGreaterThanOrEqual(1); // counted from the source's fetch, variants included
      expect(shared).toBeLessThanOrEqual(59);
      expect(browser).toBe(shared);
      // A 304 carries the caching headers the 200 would have had.
      const notModified = await get(url, { 'if-none-match': hit.headers.get('etag') ?? '' });
      expect(notModified.status).toBe(304);
      expect(notModified.headers.get('cache-control')).toBe(hit.headers.get('cache-control'));
      expect(Number(notModified.headers.get('age'))).toBeGreaterThanOrEqual(age);
    }
  });

  it('the configured Cache-Control is a ceiling: an upstream max-age of a year goes out as 30 days / 1 day', async () => {
    for (const url of forms(defaults.url, 'year.jpg')) {
      for (const state of ['MISS', 'HIT-MEMORY']) {
        const response = await get(url);
        expect(response.headers.get('x-cache')).toBe(state);
        expect(kept(response)).toMatchObject({ shared: 30 * DAY, browser: DAY });
        expect(directives(response)['stale-if-error']).toBe(DAY); // STALE_IF_ERROR_S's default under 604800
      }
    }
  });

  it('no caching headers from the upstream: a day (DEFAULT_TTL_S), not MAX_TTL_S', async () => {
    for (const url of forms(defaults.url, 'silent.jpg')) {
      const response = await get(url);
      expect(kept(response)).toMatchObject({ shared: DAY, browser: DAY });
    }
  });

  it('a 304 without caching headers for an entry of an older version (no ttlMs): a day (DEFAULT_TTL_S), not MAX_TTL_S', async () => {
    const name = 'legacy-304.jpg';
    origin.route(`/${name}`, (req, res) => {
      if (req.headers['if-none-match'] === '"legacy"') return void res.writeHead(304, { etag: '"legacy"' }).end();
      res.writeHead(200, { 'content-type': 'image/jpeg', etag: '"legacy"' }).end(first);
    });
    // What an older version left in the cache: expired, with validators, and no `ttlMs`.
    const now = Date.now();
    defaults.memory.set(cacheKey(source(name), SOURCE_VARIANT).memory, { source: source(name), body: new Uint8Array(first),
      meta: { contentType: 'image/jpeg', etag: '"legacy-body"', storedAt: now - 2 * DAY * 1000, expiresAt: now - 1000,
        sourceUrl: source(name), validators: { etag: '"legacy"' }, size: first.byteLength, tags: [] } });
    const url = `${defaults.url}/?${source(name)}`;
    expect((await get(url)).headers.get('x-cache')).toBe('STALE');
    const deadline = Date.now() + 10_000;
    let refreshed = await get(url);
    while (refreshed.headers.get('x-cache') !== 'HIT-MEMORY' && Date.now() < deadline) {
      await sleep(100);
      refreshed = await get(url);
    }
    expect(refreshed.headers.get('x-cache')).toBe('HIT-MEMORY');
    expect(kept(refreshed).shared).toBeLessThanOrEqual(DAY);
    expect(kept(refreshed).shared).toBeGreaterThan(DAY - 60);
  });

  it('upstream no-cache: nothing beyond what imgrelay itself would serve unasked (MIN_TTL_S; 0 when it is 0)', async () => {
    const bounded = await get(`${defaults.url}/?${source('no-cache.jpg')}`);
    expect(kept(bounded)).toMatchObject({ shared: 3600, browser: 3600 });
    const immediate = await get(`${relay.url}/?${source('no-cache.jpg')}`);
    expect(directives(immediate)).toMatchObject({ 'max-age': 0, 's-maxage': 0 });
  });

  it('counts the Age the upstream reported as used up (max-age=60 with Age: 50 leaves 10 s)', async () => {
    const response = await get(`${relay.url}/?${source('aged.jpg')}`);
    expect(kept(response).shared).toBeLessThanOrEqual(10);
    expect(kept(response).shared).toBeGreaterThanOrEqual(9);
  });

  it('a STALE response may be kept only briefly downstream, with stale-while-revalidate', async () => {
    const url = `${relay.url}/?${source('stale.jpg')}`;
    expect((await get(url)).headers.get('x-cache')).toBe('MISS');
    await sleep(1100);
    const stale = await get(url);
    expect(stale.headers.get('x-cache')).toBe('STALE');
    expect(kept(stale)).toMatchObject({ shared: STALE_MAX_AGE_S, browser: STALE_MAX_AGE_S });
    expect(directives(stale)).toMatchObject({ 'stale-while-revalidate': DAY, 'stale-if-error': 3600 });
  });

  it('maxage= lowers the browser max-age only, never raises it, on the full and the fast path', async () => {
    const base = `${defaults.url}/?url=${encodeURIComponent(source('year.jpg'))}&w=41`;
    for (const state of ['MISS', 'HIT-MEMORY']) {
      const lowered = await get(`${base}&maxage=600`);
      expect(lowered.headers.get('x-cache')).toBe(state);
      expect(kept(lowered)).toMatchObject({ browser: 600, shared: 30 * DAY });
      const raised = await get(`${base}&maxage=31d`);
      expect(kept(raised)).toMatchObject({ browser: DAY, shared: 30 * DAY });
    }
  });
});

it('stops standing in for a failing origin STALE_IF_ERROR_S after expiry: then the client gets the error', async () => {
  let failing = false;
  origin.route('/bounded.jpg', (_req, res) => {
    if (failing) return void res.writeHead(503).end('down');
    res.writeHead(200, { 'content-type': 'image/jpeg', 'cache-control': 'max-age=1' }).end(first);
  });
  const url = `${strict.url}/?${source('bounded.jpg')}`;
  expect((await get(url)).headers.get('x-cache')).toBe('MISS');
  const built = Date.now(); // the entry expires by built + 1 s
  failing = true;
  await sleep(1100);
  const stale = await get(url);
  expect(stale.headers.get('x-cache')).toBe('STALE');
  expect(directives(stale)['stale-if-error']).toBe(2);

  await sleep(built + 3300 - Date.now());
  const refused = await fetch(url);
  expect(refused.status).toBe(502);
  expect(refused.headers.get('cache-control')).toBe('no-store');
  expect(await refused.json()).toMatchObject({ code: 'E_UPSTREAM' });

  failing = false; // the origin is back: the request waits for the revalidation and gets fresh bytes
  const back = await get(url);
  expect(back.headers.get('x-cache')).toBe('MISS');
  expect(kept(back).shared).toBeLessThanOrEqual(1); // the origin's max-age=1 again, not a stale stand-in's 60 s
});
