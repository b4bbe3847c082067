/**
 * Per-client limits on misses through the real service (issue #16 item 3): a real loopback origin, real sharp, the
 * real Node listener. Each client's requests that must fetch or transform take a token; hits never do.
 */
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type TestOrigin, startOrigin } from './helpers/origin.js';
import { ZAKER, bootImgrelay, zakerAt } from './helpers/imgrelay.js';
import type { RunningNode } from '../src/node.js';

const photo = readFileSync(new URL('./fixtures/photo-ladybird.jpg', import.meta.url));
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

let origin: TestOrigin;
let release: () => void = () => undefined;
beforeAll(async () => {
  origin = await startOrigin();
  origin.serve('/a.jpg', photo, 'image/jpeg');
  origin.serve('/b.jpg', photo, 'image/jpeg');
  // Held until the test releases it: a miss stays in flight while others join it.
  origin.route('/slow.jpg', async (_req, res) => {
    await new Promise<void>((resolve) => { release = resolve; });
    res.writeHead(200, { 'content-type': 'image/jpeg', 'content-length': photo.byteLength }).end(photo);
  });
});
afterAll(() => origin.close());

let relay: RunningNode | undefined;
afterEach(async () => {
  await relay?.close();
  relay = undefined;
});
const boot = async (env: Record<string, string>) => (relay = await bootImgrelay({ ...zakerAt(origin.port), ...env }));

let base = () => relay!.url;
const variant = (path: string, w: number) => `${base()}/?url=${encodeURIComponent(`http://${ZAKER}${path}`)}&w=${w}`;
async function get(url: string, headers: Record<string, string> = {}) {
  const response = await fetch(url, { headers });
  const body = await response.text();
  return { status: response.status, headers: response.headers, body };
}

describe('per-client miss limits', () => {
  it('429 after the burst, with Retry-After and no-store, while hits stay 200', async () => {
    await boot({ IMGRELAY_MISS_RATE: '3/h' });
    for (const w of [100, 101, 102]) expect((await get(variant('/a.jpg', w))).headers.get('x-cache')).toBe('MISS');

    const refused = await get(variant('/a.jpg', 103));
    expect(refused.status).toBe(429);
    expect(refused.headers.get('content-type')).toBe('application/problem+json');
    expect(refused.headers.get('cache-control')).toBe('no-store');
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(Number(refused.headers.get('retry-after'))).toBeLessThanOrEqual(3600);
    expect(JSON.parse(refused.body)).toMatchObject({ status: 429, code: 'E_RATE_LIMITED' });

    // The same client, out of tokens: everything already built is still served, as often as it likes.
    for (let i = 0; i < 10; i++) {
      for (const w of [100, 101, 102]) {
        const hit = await get(variant('/a.jpg', w));
        expect(hit.status).toBe(200);
        expect(hit.headers.get('x-cache')).toBe('HIT-MEMORY');
      }
    }
  });

  it('a cache-busting attacker gets burst misses: origin fetches and transforms stay at the burst, the rest 429 fast', async () => {
    await boot({ IMGRELAY_MISS_RATE: '4/h' });
    const fetchesBefore = origin.hits('/b.jpg');
    const started = performance.now();
    // 60 distinct sources (query busters) and widths at once: each one a new origin fetch and a new transform.
    const answers = await Promise.all(Array.from({ length: 60 }, (_, i) => get(variant(`/b.jpg?bust=${i}`, 200 + i))));
    const seconds = (performance.now() - started) / 1000;
    const statuses = answers.map((a) => a.status);
    expect(statuses.filter((s) => s === 200)).toHaveLength(4);
    expect(statuses.filter((s) => s === 429)).toHaveLength(56);
    expect(origin.hits('/b.jpg') - fetchesBefore).toBe(4);
    expect(relay!.transformer.stats().completed).toBe(4);
    expect(seconds).toBeLessThan(20); // a generous bound: refusals cost no fetch, no transform, no queue slot
  });

  it('store hits are not misses: a fresh instance serves HIT-STORE past the burst, then limits the first new variant', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'imgrelay-rate-'));
    try {
      const store = { IMGRELAY_STORE: 'fs', IMGRELAY_CACHE_DIR: dir };
      await boot(store);
      for (const w of [120, 121, 122]) expect((await get(variant('/a.jpg', w))).status).toBe(200);
      await relay!.close(); // drains the write-behind queue
      relay = undefined;

      await boot({ ...store, IMGRELAY_MISS_RATE: '1/h' });
      // Store reads count only once the purge log was read whole (tiered.ts storeReady); under load that can take a
      // moment after start-up, and a read before it is a miss, which would spend the token.
      const deadline = Date.now() + 20_000;
      while (!relay!.admin.purgeLog?.complete && Date.now() < deadline) await sleep(20);
      for (const w of [120, 121, 122]) expect((await get(variant('/a.jpg', w))).headers.get('x-cache')).toBe('HIT-STORE');
      expect((await get(variant('/a.jpg', 123))).headers.get('x-cache')).toBe('MISS');
      expect((await get(variant('/a.jpg', 124))).status).toBe(429);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('a client behind a trusted proxy is limited by its X-Forwarded-For hop, not the proxy\'s address', async () => {
    await boot({ IMGRELAY_MISS_RATE: '2/h', IMGRELAY_TRUSTED_PROXIES: '127.0.0.1' });
    const alice = { 'x-forwarded-for': '203.0.113.1' };
    const bob = { 'x-forwarded-for': '203.0.113.2' };
    expect((await get(variant('/a.jpg', 130), alice)).status).toBe(200);
    expect((await get(variant('/a.jpg', 131), alice)).status).toBe(200);
    expect((await get(variant('/a.jpg', 132), alice)).status).toBe(429);
    // Alice prepending a made-up hop: the walk from the right still stops at the hop our proxy appended.
    expect((await get(variant('/a.jpg', 133), { 'x-forwarded-for': '198.51.100.9, 203.0.113.1' })).status).toBe(429);
    // Bob, through the same proxy connection address, has a bucket of his own.
    expect((await get(variant('/a.jpg', 134), bob)).status).toBe(200);
    expect((await get(variant('/a.jpg', 135), bob)).status).toBe(200);
  });

  it('an IPv6 client rotating addresses inside its /64 keeps one bucket; the next /64 is another client', async () => {
    await boot({ IMGRELAY_MISS_RATE: '2/h', IMGRELAY_TRUSTED_PROXIES: '127.0.0.1' });
    const from = (address: string) => ({ 'x-forwarded-for': address });
    expect((await get(variant('/a.jpg', 190), from('2001:db8:1:2::1'))).status).toBe(200);
    expect((await get(variant('/a.jpg', 191), from('2001:db8:1:2:dead:beef:0:2'))).status).toBe(200);
    expect((await get(variant('/a.jpg', 192), from('2001:db8:1:2:ffff:ffff:ffff:ffff'))).status).toBe(429);
    expect((await get(variant('/a.jpg', 193), from('2001:db8:1:3::1'))).status).toBe(200);
  });

  it('a dual-stack listener\'s v4-mapped peer (::ffff:127.0.0.1) is the IPv4 proxy listed as trusted', async () => {
    await boot({ IMGRELAY_HOST: '::ffff:127.0.0.1', IMGRELAY_MISS_RATE: '1/h', IMGRELAY_TRUSTED_PROXIES: '127.0.0.1' });
    base = () => `http://127.0.0.1:${relay!.port}`;
    try {
      expect((await get(variant('/a.jpg', 195), { 'x-forwarded-for': '203.0.113.1' })).status).toBe(200);
      expect((await get(variant('/a.jpg', 196), { 'x-forwarded-for': '203.0.113.1' })).status).toBe(429);
      expect((await get(variant('/a.jpg', 197), { 'x-forwarded-for': '203.0.113.2' })).status).toBe(200);
    } finally {
      base = () => relay!.url;
    }
  });

  it('an untrusted peer\'s X-Forwarded-For is ignored (spoofing does not buy a new bucket)', async () => {
    await boot({ IMGRELAY_MISS_RATE: '2/h' });
    const spoof = (i: number) => ({ 'x-forwarded-for': `203.0.113.${i}`, 'cf-connecting-ip': `198.51.100.${i}` });
    const statuses = [];
    for (let i = 0; i < 6; i++) statuses.push((await get(variant('/a.jpg', 140 + i), spoof(i))).status);
    expect(statuses).toEqual([200, 200, 429, 429, 429, 429]);
  });

  it('a coalesced waiter joining another client\'s miss costs nothing: built once, both MISS, its token kept', async () => {
    await boot({ IMGRELAY_MISS_RATE: '1/h', IMGRELAY_TRUSTED_PROXIES: '127.0.0.1' });
    const leader = { 'x-forwarded-for': '203.0.113.1' };
    const waiter = { 'x-forwarded-for': '203.0.113.2' };
    const fetchesBefore = origin.hits('/slow.jpg');
    const first = get(variant('/slow.jpg', 150), leader);
    while (origin.hits('/slow.jpg') === fetchesBefore) await sleep(5); // the leader's fetch reached the origin
    const joined = get(variant('/slow.jpg', 150), waiter);
    while (relay!.sockets().open < 2) await sleep(5); // the waiter's connection is in
    await sleep(200); // and its request reaches the flight (held there until the origin answers)
    release();
    const [a, b] = await Promise.all([first, joined]);
    expect([a.status, a.headers.get('x-cache')]).toEqual([200, 'MISS']);
    expect([b.status, b.headers.get('x-cache')]).toEqual([200, 'MISS']);
    expect(origin.hits('/slow.jpg') - fetchesBefore).toBe(1);
    expect(relay!.transformer.stats().completed).toBe(1);
    // The waiter still has its one token; the leader spent its own.
    expect((await get(variant('/a.jpg', 151), waiter)).status).toBe(200);
    expect((await get(variant('/a.jpg', 152), leader)).status).toBe(429);
  });

  it('the bucket refills after the window: after Retry-After the client misses again', async () => {
    await boot({ IMGRELAY_MISS_RATE: '1/s', IMGRELAY_MISS_BURST: '2' }); // a 2 s window of 2 misses
    // At once, so all three reach the gate well inside one window whatever the machine's load.
    const answers = await Promise.all([160, 161, 162].map((w) => get(variant('/a.jpg', w))));
    expect(answers.map((a) => a.status).sort()).toEqual([200, 200, 429]);
    const retryAfter = Number(answers.find((a) => a.status === 429)!.headers.get('retry-after'));
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(2);
    await sleep(retryAfter * 1000);
    expect((await get(variant('/a.jpg', 163))).status).toBe(200);
  });

  it('a default= stand-in does not swallow the 429: the client is told to wait, not served a placeholder', async () => {
    await boot({ IMGRELAY_MISS_RATE: '1/h' });
    expect((await get(variant('/a.jpg', 180))).status).toBe(200);
    const standInFetches = origin.hits('/b.jpg');
    const standIn = encodeURIComponent(`http://${ZAKER}/b.jpg`);
    const refused = await get(`${variant('/missing.jpg', 181)}&default=${standIn}`);
    expect(refused.status).toBe(429);
    expect(refused.headers.get('x-imgrelay-fallback')).toBeNull();
    expect(origin.hits('/b.jpg')).toBe(standInFetches);
  });

  it('limits are off by default: a client makes as many misses as it likes', async () => {
    await boot({});
    for (let i = 0; i < 8; i++) expect((await get(variant('/a.jpg', 170 + i))).status).toBe(200);
  });
});
