/**
 * Hotlink placeholders through the real service: a loopback origin plays a hotlink-protected CDN that answers a
 * request without its own Referer with 200 and a stand-in picture (as WeChat's mmbiz.qpic.cn does), and the real
 * image when the Referer is the CDN's site. The placeholder must never become the cached image.
 */
import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type TestOrigin, startOrigin } from './helpers/origin.js';
import { bootImgrelay, bytes, digest, zakerAt } from './helpers/imgrelay.js';
import { placeholderPng, placeholderReencoded } from './helpers/placeholder-image.js';
import { placeholderEntries } from '../src/fetch/placeholder-hash.js';
import type { PlaceholderSignature } from '../src/fetch/placeholder-rules.js';
import type { RunningNode } from '../src/node.js';

const CDN = 'mmbiz.qpic.cn';
const SITE = 'https://mp.weixin.qq.com/';
const photo = readFileSync(new URL('./fixtures/photo-wood.jpg', import.meta.url));

let origin: TestOrigin;
let dir: string;
let placeholder: Buffer;
let entries: PlaceholderSignature[];
/** What the CDN answers without its Referer: the placeholder, or (when the protection is lifted) the image. */
let refusing = true;
let standIn: () => Buffer;

beforeAll(async () => {
  origin = await startOrigin();
  dir = await mkdtemp(join(tmpdir(), 'imgrelay-placeholder-'));
  placeholder = await placeholderPng();
  entries = await placeholderEntries(placeholder);
  standIn = () => placeholder;
  for (const [path, maxAge] of [['/mmbiz_jpg/a/640', 3600], ['/mmbiz_jpg/short/640', 1]] as const) {
    origin.route(path, (req, res) => {
      const body = !refusing || req.headers.referer === SITE ? photo : standIn();
      res.writeHead(200, { 'content-type': 'image/jpeg', 'content-length': body.byteLength, 'cache-control': `max-age=${maxAge}` });
      res.end(body);
    });
  }
});
afterAll(async () => {
  await origin.close();
  await rm(dir, { recursive: true, force: true });
});

let relay: RunningNode | undefined;
afterEach(async () => {
  await relay?.close();
  relay = undefined;
  refusing = true;
  standIn = () => placeholder;
  origin.requests.length = 0;
});

async function boot(rule: Record<string, unknown>, env: Record<string, string> = {}): Promise<RunningNode> {
  const file = join(dir, `rules-${Math.random().toString(36).slice(2)}.json`);
  await writeFile(file, JSON.stringify({ rules: [{ host: CDN, headers: { referer: null }, ...rule }] }));
  relay = await bootImgrelay({ ...zakerAt(origin.port, CDN), IMGRELAY_HEADER_RULES: file, ...env });
  return relay;
}

const legacy = (node: RunningNode) => `${node.url}/?http://${CDN}/mmbiz_jpg/a/640`;
const resized = (node: RunningNode) => `${node.url}/?url=${encodeURIComponent(`http://${CDN}/mmbiz_jpg/a/640`)}&w=120`;
const hits = () => origin.hits('/mmbiz_jpg/a/640');

/** The store's keys for the source: its prefix holds the original and every variant (DESIGN.md, Cache). */
async function storedKeys(node: RunningNode): Promise<string[]> {
  await node.store!.writes.drain(10_000);
  const prefix = createHash('sha256').update(`http://${CDN}/mmbiz_jpg/a/640`).digest('hex');
  const keys: string[] = [];
  for await (const key of node.store!.raw.list(prefix)) keys.push(key);
  return keys;
}

async function expectPlaceholderRefusal(response: Response): Promise<void> {
  expect(response.status).toBe(502);
  expect(response.headers.get('content-type')).toBe('application/problem+json');
  expect(response.headers.get('cache-control')).toBe('no-store');
  expect(response.headers.get('x-cache')).toBeNull();
  expect((await response.json()).code).toBe('E_UPSTREAM_PLACEHOLDER');
}

describe('hotlink placeholders', () => {
  it('no alternate → 502 E_UPSTREAM_PLACEHOLDER no-store, on the relay and on a transform', async () => {
    const node = await boot({ placeholders: [entries[0]] });
    await expectPlaceholderRefusal(await fetch(legacy(node)));
    await expectPlaceholderRefusal(await fetch(resized(node)));
    expect(hits()).toBe(2); // one fetch each: no retry without alternate headers
    expect(await node.metrics.render()).toMatch(
      new RegExp(`imgrelay_upstream_placeholders_total\\{host="${CDN.replace(/\./g, '\\.')}",outcome="refused"\\} 2`));
  });

  it('placeholder never cached: the next request fetches again, the store holds nothing, and the real image follows',
    async () => {
      const node = await boot({ placeholders: [entries[0]] }, { IMGRELAY_STORE: 'fs', IMGRELAY_CACHE_DIR: join(dir, 'store') });
      await expectPlaceholderRefusal(await fetch(legacy(node)));
      await expectPlaceholderRefusal(await fetch(legacy(node)));
      expect(hits()).toBe(2); // not remembered as a failure either
      expect(await storedKeys(node)).toEqual([]);
      expect(node.memory.stats()).toMatchObject({ entries: 0, negativeEntries: 0 });

      refusing = false; // the CDN lifts its protection: the very next request gets the image, and caches it
      const served = await fetch(legacy(node));
      expect(served.status).toBe(200);
      expect(digest(await bytes(served))).toBe(digest(photo));
      expect((await storedKeys(node)).length).toBeGreaterThan(0); // the check above could have failed
    });

  it('alternate headers retried once and the real image served (and cached)', async () => {
    const node = await boot({ placeholders: entries, alternate: { referer: SITE } });
    const response = await fetch(legacy(node));
    expect(response.status).toBe(200);
    expect(digest(await bytes(response))).toBe(digest(photo));
    expect(origin.requests.map((r) => r.headers.referer)).toEqual([undefined, SITE]);
    const again = await fetch(legacy(node));
    expect(again.headers.get('x-cache')).toBe('HIT-MEMORY');
    await again.arrayBuffer();
    expect(hits()).toBe(2);
    expect(await node.metrics.render()).toMatch(/imgrelay_upstream_placeholders_total\{[^}]*outcome="retried"\} 1/);
  });

  it('alternate headers also answered with the placeholder → 502 after exactly one retry', async () => {
    const node = await boot({ placeholders: entries, alternate: { referer: 'https://elsewhere.example/' } });
    await expectPlaceholderRefusal(await fetch(legacy(node)));
    expect(origin.requests.map((r) => r.headers.referer)).toEqual([undefined, 'https://elsewhere.example/']);
  });

  it('perceptual match catches a re-encoded placeholder; another picture of the same size passes', async () => {
    const reencoded = await placeholderReencoded('jpeg', 45);
    expect(reencoded.byteLength).not.toBe(placeholder.byteLength); // so the exact entry could not catch it
    standIn = () => reencoded;
    const node = await boot({ placeholders: [entries[1]] });
    await expectPlaceholderRefusal(await fetch(legacy(node)));

    const { default: sharp } = await import('sharp');
    const lookalikeSize = await sharp(photo).resize(300, 200, { fit: 'fill' }).jpeg().toBuffer();
    standIn = () => lookalikeSize;
    const response = await fetch(legacy(node)); // the refusal just before was not remembered
    expect(response.status).toBe(200);
    expect(digest(await bytes(response))).toBe(digest(lookalikeSize));
  });

  it('a placeholder on revalidation never replaces the cached image: the real one is served stale', async () => {
    refusing = false;
    const node = await boot({ placeholders: [entries[0]] }, { IMGRELAY_MIN_TTL_S: '0', IMGRELAY_STALE_IF_ERROR_S: '3600' });
    const short = `${node.url}/?http://${CDN}/mmbiz_jpg/short/640`;
    const first = await fetch(short);
    expect(digest(await bytes(first))).toBe(digest(photo));
    refusing = true; // the CDN starts refusing hotlinks while the entry is cached
    await new Promise((resolve) => setTimeout(resolve, 1100));
    const revalidations = () => origin.hits('/mmbiz_jpg/short/640') - 1;
    for (let i = 0; i < 5 && revalidations() < 2; i++) {
      const response = await fetch(short);
      expect(response.status).toBe(200);
      expect(response.headers.get('x-cache')).toBe('STALE');
      expect(digest(await bytes(response))).toBe(digest(photo));
      await new Promise((resolve) => setTimeout(resolve, 300));
    }
    expect(revalidations()).toBeGreaterThan(0); // the origin was asked, answered with the placeholder, and was refused
    expect(await node.metrics.render()).toMatch(/imgrelay_upstream_placeholders_total\{[^}]*outcome="refused"\} [1-9]/);
  });

  it('a default= stand-in replaces a placeholder refusal (a source failure), and the placeholder is still never cached',
    async () => {
      origin.serve('/fallback.jpg', photo, 'image/jpeg');
      const node = await boot({ placeholders: [entries[0]] }, { IMGRELAY_STORE: 'fs', IMGRELAY_CACHE_DIR: join(dir, 'store-fallback') });
      const url = `${resized(node)}&default=${encodeURIComponent(`http://${CDN}/fallback.jpg`)}`;
      for (let i = 0; i < 2; i++) {
        const response = await fetch(url);
        expect(response.status).toBe(200);
        expect(response.headers.get('x-imgrelay-fallback')).toBe('E_UPSTREAM_PLACEHOLDER');
        expect(response.headers.get('cache-control')).toBe('public, max-age=60');
        expect(response.headers.get('content-type')).toBe('image/jpeg');
        await response.arrayBuffer();
      }
      expect(hits()).toBe(2); // the source was asked each time: its placeholder was never kept
      expect(await storedKeys(node)).toEqual([]);
    });

  it('a malformed placeholder entry stops the start-up, naming it', async () => {
    await expect(boot({ placeholders: [{ bytes: 1, sha256: 'nothex' }] }))
      .rejects.toThrow(/rules\.0\.placeholders\.0\.sha256/);
  });
});
