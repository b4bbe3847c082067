/**
 * The query and path APIs end to end: one canonical entry for the three URL forms, Accept negotiation with the
 * real browsers' headers, refusals with their codes, coalescing of identical cold transforms, and the fallback.
 */
import { readFileSync } from 'node:fs';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type TestOrigin, startOrigin } from './helpers/origin.js';
import { ZAKER, bootImgrelay, bytes, zakerAt } from './helpers/imgrelay.js';
import type { RunningNode } from '../src/node.js';

const fixture = (name: string) => readFileSync(new URL(`./fixtures/${name}`, import.meta.url));
const ACCEPT = {
  chromium: 'image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8',
  firefox: 'image/avif,image/webp,image/png,image/svg+xml,image/*;q=0.8,*/*;q=0.5',
  safari: 'image/webp,image/avif,image/jxl,image/heic,image/heic-sequence,video/*;q=0.8,image/png,image/svg+xml,image/*;q=0.8,*/*;q=0.5',
  oldSafari: 'image/webp,image/png,image/svg+xml,image/*;q=0.8,video/*;q=0.8,*/*;q=0.5',
  any: '*/*',
};

let origin: TestOrigin;
let relay: RunningNode;
beforeAll(async () => {
  origin = await startOrigin();
  for (const name of ['photo-wood.jpg', 'palette-alpha.png', 'bomb-64250x64250.jpg', 'bomb-crasher.png',
    'corrupt.jpg', 'unsupported.bmp', 'cmyk-truncated.jpg']) origin.serve(`/img/${name}`, fixture(name), 'image/jpeg');
  relay = await bootImgrelay({ ...zakerAt(origin.port), IMGRELAY_LEGACY_OPTIONS: 'w=320&output=webp' });
});
afterAll(async () => {
  await relay.close();
  await origin.close();
});

const src = (name: string) => `http://${ZAKER}/img/${name}`;
const get = (path: string, accept?: string) => fetch(`${relay.url}${path}`, accept ? { headers: { accept } } : {});
const metadataOf = async (response: Response) => sharp(await bytes(response)).metadata();

describe('the three URL forms', () => {
  it('share one cache entry for one request', async () => {
    const query = await get(`/?url=${encodeURIComponent(src('photo-wood.jpg'))}&w=320&output=webp&junk=1`);
    expect(query.status).toBe(200);
    expect(query.headers.get('x-cache')).toBe('MISS');
    const meta = await metadataOf(query);
    expect([meta.format, meta.width]).toEqual(['webp', 320]);
    // The path form with the query form's defaults spelled out (its own are quality 85 and anim=true).
    const path = await get(`/cdn-cgi/image/width=320,format=webp,quality=80,anim=false/${src('photo-wood.jpg')}`);
    expect(path.headers.get('x-cache')).toBe('HIT-MEMORY');
    const legacy = await get(`/?${src('photo-wood.jpg')}`);
    expect(legacy.headers.get('x-cache')).toBe('HIT-MEMORY');
    expect(legacy.headers.get('etag')).toBe(query.headers.get('etag'));
    expect(origin.hits('/img/photo-wood.jpg')).toBe(1);
  });

  it('answers an invalid option with 400 naming it', async () => {
    const response = await get(`/?url=${encodeURIComponent(src('photo-wood.jpg'))}&w=abc`);
    expect(response.status).toBe(400);
    const body = await response.json();
    expect(body.code).toBe('E_BAD_REQUEST');
    expect(body.detail).toContain('"w"');
  });
});

describe('format negotiation', () => {
  const cases: Array<[keyof typeof ACCEPT, string]> = [
    ['chromium', 'avif'], ['firefox', 'avif'], ['safari', 'avif'], ['oldSafari', 'webp'], ['any', 'jpeg'],
  ];
  for (const [browser, format] of cases) {
    it(`gives ${browser}'s Accept ${format}, with Vary: Accept`, async () => {
      const response = await get(`/?url=${encodeURIComponent(src('photo-wood.jpg'))}&w=200&output=auto`, ACCEPT[browser]);
      expect(response.status).toBe(200);
      expect(response.headers.get('content-type')).toBe(`image/${format}`);
      expect(response.headers.get('vary')).toBe('Accept');
      const meta = await metadataOf(response);
      expect(meta.format === 'heif' ? 'avif' : meta.format).toBe(format);
    });
  }

  it('sends no Vary when the format was fixed by the request', async () => {
    const response = await get(`/?url=${encodeURIComponent(src('photo-wood.jpg'))}&w=200&output=png`, ACCEPT.chromium);
    expect(response.headers.get('content-type')).toBe('image/png');
    expect(response.headers.get('vary')).toBeNull();
  });
});

describe('hostile and broken sources', () => {
  const transform = (name: string) => get(`/?url=${encodeURIComponent(src(name))}&w=100`);
  for (const [name, status, code] of [
    ['bomb-64250x64250.jpg', 422, 'E_IMAGE_INVALID'], ['bomb-crasher.png', 422, 'E_IMAGE_INVALID'],
    ['corrupt.jpg', 422, 'E_IMAGE_INVALID'], ['cmyk-truncated.jpg', 422, 'E_IMAGE_INVALID'],
    ['unsupported.bmp', 415, 'E_UNSUPPORTED_MEDIA'],
  ] as const) {
    it(`refuses to transform ${name} with ${status}`, async () => {
      const rssBefore = process.memoryUsage().rss;
      const response = await transform(name);
      expect(response.status).toBe(status);
      expect((await response.json()).code).toBe(code);
      expect(response.headers.get('cache-control')).toBe(status === 422 ? 'public, max-age=60' : 'no-store');
      expect(process.memoryUsage().rss - rssBefore).toBeLessThan(200 * 1024 * 1024);
    });
  }

  it('still relays a bomb byte for byte through the legacy form without options', async () => {
    const plain = await bootImgrelay(zakerAt(origin.port));
    try {
      const response = await fetch(`${plain.url}/?${src('bomb-64250x64250.jpg')}`);
      expect(response.status).toBe(200);
      expect((await bytes(response)).byteLength).toBe(fixture('bomb-64250x64250.jpg').byteLength);
    } finally {
      await plain.close();
    }
  });

  it('relays, with IMGRELAY_LEGACY_OPTIONS, a legacy image that cannot be transformed as it is', async () => {
    const response = await get(`/?${src('corrupt.jpg')}`);
    expect(response.status).toBe(200);
    expect((await bytes(response)).byteLength).toBe(fixture('corrupt.jpg').byteLength);
  });
});

describe('coalescing', () => {
  it('makes 1 origin fetch and 1 transform for 20 concurrent identical cold requests', async () => {
    origin.route('/img/slow.jpg', (_req, res) => {
      setTimeout(() => res.writeHead(200, { 'content-type': 'image/jpeg' }).end(fixture('photo-wood.jpg')), 200);
    });
    const before = relay.transformer.stats().completed;
    const responses = await Promise.all(Array.from({ length: 20 },
      () => get(`/?url=${encodeURIComponent(src('slow.jpg'))}&w=150&output=jpg`)));
    expect(responses.map((r) => r.status)).toEqual(Array(20).fill(200));
    const etags = new Set(responses.map((r) => r.headers.get('etag')));
    expect(etags.size).toBe(1);
    // DESIGN: a coalesced waiter was built for, not found in, the cache.
    expect(new Set(responses.map((r) => r.headers.get('x-cache')))).toEqual(new Set(['MISS']));
    expect(responses.every((r) => /total;dur=\d/.test(r.headers.get('server-timing') ?? ''))).toBe(true);
    expect(origin.hits('/img/slow.jpg')).toBe(1);
    expect(relay.transformer.stats().completed - before).toBe(1);
  });

  it('builds a new width of a known source without refetching it', async () => {
    const hits = origin.hits('/img/palette-alpha.png');
    await (await get(`/?url=${encodeURIComponent(src('palette-alpha.png'))}&w=50`)).arrayBuffer();
    const second = await get(`/?url=${encodeURIComponent(src('palette-alpha.png'))}&w=60`);
    expect(second.headers.get('x-cache')).toBe('MISS');
    expect((await metadataOf(second)).width).toBe(60);
    expect(origin.hits('/img/palette-alpha.png')).toBe(hits + 1);
  });
});

describe('response options', () => {
  it('serves the default= image, briefly cached and marked, when the source fails', async () => {
    const response = await get(`/?url=${encodeURIComponent(src('gone.jpg'))}&w=40&default=${encodeURIComponent(src('palette-alpha.png'))}`);
    expect(response.status).toBe(200);
    expect(response.headers.get('x-imgrelay-fallback')).toBe('E_SOURCE_NOT_FOUND');
    expect(response.headers.get('cache-control')).toBe('public, max-age=60');
    expect((await metadataOf(response)).width).toBe(40);
  });

  it('applies maxage to the browser max-age (lowering it only) and filename to Content-Disposition', async () => {
    // The origin sends no caching headers: the entry lives DEFAULT_TTL_S (a day); maxage=1h lowers the browser's.
    const response = await get(`/?url=${encodeURIComponent(src('palette-alpha.png'))}&w=30&maxage=3600&filename=logo`);
    const age = Number(response.headers.get('age'));
    expect(response.headers.get('cache-control')).toContain(`max-age=${3600 + age},`);
    expect(response.headers.get('cache-control')).toContain(`s-maxage=${86_400}`);
    expect(response.headers.get('content-disposition')).toBe('inline; filename="logo.png"');
  });
});
