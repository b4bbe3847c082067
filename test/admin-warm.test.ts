/**
 * POST /warm through the real service: every image of an article (plain, lazy-loaded, in srcset, behind the old
 * CORS worker or imgrelay URLs with options) is fetched once and cached in memory and in the store, so readers'
 * requests for exactly those URLs are hits; per-URL results; bounded concurrency towards the origins.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { RunningNode } from '../src/node.js';
import { ZAKER, bootImgrelay, zakerAt } from './helpers/imgrelay.js';
import { type TestOrigin, startOrigin } from './helpers/origin.js';
import { TOKEN_A, adminFetch, fetchImage, hashOf, solidPng, storeDirs } from './helpers/admin.js';

const src = (name: string) => `http://${ZAKER}/${name}`;
const ARTICLE_BASE = 'https://img.example.com/articles/2021/07/post.html';
const ARTICLE = `<article><h1>Ladybirds</h1>
  <!-- <img src="${src('commented.png')}"> -->
  <img src="${src('w1.png')}" alt="plain">
  <img src="data:image/gif;base64,R0lGODlhAQABAAAAACw=" data-original="https://cors.zfour.workers.dev/?${src('w2.png')}">
  <picture>
    <source srcset="/cdn-cgi/image/width=20,format=png/${src('w3.png')} 1x, /cdn-cgi/image/width=40,format=png/${src('w3.png')} 2x">
    <img data-src="/?url=${encodeURIComponent(src('w4.png'))}&amp;w=16" loading="lazy">
  </picture>
  <img src="${src('missing.png')}">
  <script>var s = '<img src="${src('scripted.png')}">';</script>
</article>`;

interface WarmAnswer {
  total: number; ok: number; failed: number;
  results: Array<{ url: string; status: number; cache?: string; bytes?: number; code?: string }>;
}

let origin: TestOrigin;
let node: RunningNode;
let dir: string;
let inFlight = 0;
let maxInFlight = 0;

beforeAll(async () => {
  origin = await startOrigin();
  for (const [i, name] of ['w1', 'w2', 'w3', 'w4', 'commented', 'scripted'].entries()) {
    origin.serve(`/${name}.png`, await solidPng(`#${(i * 40).toString(16).padStart(2, '0')}8040`), 'image/png');
  }
  const slow = await solidPng('#999999');
  origin.route('/slow', async (req, res) => {
    inFlight += 1;
    maxInFlight = Math.max(maxInFlight, inFlight);
    await new Promise((resolve) => setTimeout(resolve, 60));
    inFlight -= 1;
    res.writeHead(200, { 'content-type': 'image/png', 'content-length': slow.byteLength }).end(slow);
  });
});
afterAll(() => origin.close());

async function boot(): Promise<RunningNode> {
  dir = await mkdtemp(join(tmpdir(), 'imgrelay-warm-'));
  return bootImgrelay({ ...zakerAt(origin.port), IMGRELAY_STORE: 'fs', IMGRELAY_CACHE_DIR: dir,
    IMGRELAY_ADMIN_TOKENS: TOKEN_A });
}
afterEach(async () => {
  await node?.close();
  await rm(dir, { recursive: true, force: true });
});

async function warm(body: unknown): Promise<WarmAnswer> {
  const response = await adminFetch(node, '/warm', { body });
  expect(response.status).toBe(200);
  expect(response.headers.get('cache-control')).toBe('no-store');
  return await response.json() as WarmAnswer;
}

describe('POST /warm', () => {
  it('warms every image of an article into memory and store; readers then hit', async () => {
    node = await boot();
    const answer = await warm({ html: ARTICLE, base: ARTICLE_BASE });
    const byUrl = new Map(answer.results.map((r) => [r.url, r]));
    const expected = [
      src('w1.png'),
      `https://cors.zfour.workers.dev/?${src('w2.png')}`,
      `https://img.example.com/cdn-cgi/image/width=20,format=png/${src('w3.png')}`,
      `https://img.example.com/cdn-cgi/image/width=40,format=png/${src('w3.png')}`,
      `https://img.example.com/?url=${encodeURIComponent(src('w4.png'))}&w=16`,
    ];
    for (const url of expected) {
      expect(byUrl.get(url), url).toMatchObject({ status: 200, cache: expect.stringMatching(/^(MISS|HIT-MEMORY)$/) });
      expect(byUrl.get(url)?.bytes).toBeGreaterThan(0);
    }
    expect(byUrl.get(src('missing.png'))).toMatchObject({ status: 404, code: 'E_SOURCE_NOT_FOUND' });
    expect(answer).toMatchObject({ total: 6, ok: 5, failed: 1 });
    expect(origin.hits('/commented.png') + origin.hits('/scripted.png')).toBe(0);

    // Readers asking for exactly those URLs (on this imgrelay) are served from memory, without the origin.
    const hits = origin.requests.length;
    for (const path of [`/?${src('w1.png')}`, `/?${src('w2.png')}`, `/cdn-cgi/image/width=20,format=png/${src('w3.png')}`,
      `/cdn-cgi/image/width=40,format=png/${src('w3.png')}`, `/?url=${encodeURIComponent(src('w4.png'))}&w=16`]) {
      expect((await fetchImage(`${node.url}${path}`)).cache, path).toBe('HIT-MEMORY');
    }
    expect(origin.requests.length).toBe(hits);
    // And the store holds every warmed source for the other instances and restarts.
    const dirs = await storeDirs(node);
    for (const name of ['w1', 'w2', 'w3', 'w4']) expect(dirs.has(await hashOf(src(`${name}.png`)))).toBe(true);

    // Warming again finds everything cached.
    const again = await warm({ html: ARTICLE, base: ARTICLE_BASE });
    expect(again.results.filter((r) => r.status === 200).every((r) => r.cache === 'HIT-MEMORY')).toBe(true);
  });

  it('warms a list of URLs, at most 4 origin fetches at a time', async () => {
    node = await boot();
    maxInFlight = 0;
    const urls = Array.from({ length: 12 }, (_, i) => `http://${ZAKER}/slow?n=${i}`);
    const answer = await warm({ urls });
    expect(answer).toMatchObject({ total: 12, ok: 12, failed: 0 });
    expect(answer.results.map((r) => r.url)).toEqual(urls);
    expect(maxInFlight).toBeGreaterThanOrEqual(1);
    expect(maxInFlight).toBeLessThanOrEqual(4);
  });

  it('reports refused and malformed URLs per URL, and malformed bodies as 400', async () => {
    node = await boot();
    const answer = await warm({ urls: ['http://127.0.0.1:1/x.png', 'ftp://example.com/a.png', 'not a url'] });
    expect(answer.results.map((r) => [r.status, r.code])).toEqual([
      [403, 'E_SOURCE_FORBIDDEN'], [400, 'E_BAD_REQUEST'], [400, 'E_BAD_REQUEST']]);
    for (const [body, reason] of [[{}, /expected \{"urls"/], [{ urls: [] }, /urls: empty/], [{ html: 5 }, /html: expected a string/],
      [{ html: '<img>', base: 'relative/path' }, /base: expected an absolute URL/]] as const) {
      const response = await adminFetch(node, '/warm', { body });
      expect(response.status).toBe(400);
      expect((await response.json() as { detail: string }).detail).toMatch(reason);
    }
  });
});
