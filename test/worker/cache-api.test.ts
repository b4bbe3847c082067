/**
 * The Cache API as the edge's cache tier, in workerd (`caches.default` as miniflare provides it): a second isolate
 * in the same data centre finds what the first stored (HIT-STORE) without asking the origin again, and the key
 * carries the variant so that no response depends on `Vary`.
 */
import { describe, expect, it } from 'vitest';
import { cacheKey, storeKey, variantMaterial } from '../../src/cache/keys.js';
import { cacheApiUrl, createCacheApiStore, type CacheLike } from '../../src/cache/cache-api-store.js';
import type { StoredEntry } from '../../src/cache/types.js';
import { freshEdge, IMAGES, originHits, sha256, unique, viaEdge, viaWorker } from './helpers.js';

const cacheApi = () => (globalThis as unknown as { caches: { default: CacheLike } }).caches.default;

describe('Cache API tier', () => {
  it('serves a second isolate from the Cache API (HIT-STORE) with the origin asked once', async () => {
    const source = `/cached.jpg?case=${unique('hit-store')}`;
    const path = `/?${IMAGES}${source}`;
    const first = await viaEdge(freshEdge(), path);
    expect(first.headers.get('x-cache')).toBe('MISS');
    const firstBytes = await sha256(await first.arrayBuffer());

    const second = await viaEdge(freshEdge(), path);
    expect(second.status).toBe(200);
    expect(second.headers.get('x-cache')).toBe('HIT-STORE');
    expect(await sha256(await second.arrayBuffer())).toBe(firstBytes);
    expect(second.headers.get('etag')).toBe(first.headers.get('etag'));
    expect(await originHits(source)).toBe(1);
  });

  it('serves a repeat in the same isolate from memory, and through the default export too', async () => {
    const source = `/cached.jpg?case=${unique('memory')}`;
    const edge = freshEdge();
    await viaEdge(edge, `/?${IMAGES}${source}`);
    expect((await viaEdge(edge, `/?${IMAGES}${source}`)).headers.get('x-cache')).toBe('HIT-MEMORY');
    // The default export keeps one edge per isolate: its second request is a memory hit as well.
    await viaWorker(`/?${IMAGES}${source}`);
    expect((await viaWorker(`/?${IMAGES}${source}`)).headers.get('x-cache')).toBe('HIT-MEMORY');
    expect(await originHits(source)).toBe(1);
  });

  it('keeps every store key, format bucket included, under its own synthetic URL', async () => {
    const source = `${IMAGES}/cached.jpg?case=${unique('bucket')}`;
    const store = createCacheApiStore(cacheApi());
    const keyFor = (bucket: string) => storeKey(cacheKey(source, variantMaterial('w=100|f=auto', bucket)));
    const [avif, webp] = await Promise.all([keyFor('avif'), keyFor('webp')]);
    await store.put(avif, entry('image/avif', [1, 2, 3]));
    await store.put(webp, entry('image/webp', [4, 5]));
    expect((await store.get(avif))?.meta.contentType).toBe('image/avif');
    expect([...(await store.get(webp))!.body]).toEqual([4, 5]);
    const stored = await cacheApi().match(new Request(cacheApiUrl(webp)));
    expect(stored?.headers.get('vary')).toBeNull();
    expect(stored?.headers.get('cache-tag')).toBe('src-test,host-test');
    await stored?.arrayBuffer();
    expect(await store.delete(webp)).toBe(true);
    expect(await store.get(webp)).toBeUndefined();
    // Not enumerable: a prefix purge cannot reach the Cache API (documented); exact keys still can.
    expect(await store.deletePrefix(avif.slice(0, 64))).toBe(0);
    expect((await store.get(avif))?.meta.contentType).toBe('image/avif');
  });
});

function entry(contentType: string, bytes: number[]): StoredEntry {
  const now = Date.now();
  return {
    body: new Uint8Array(bytes),
    meta: { contentType, etag: '"e"', storedAt: now, expiresAt: now + 60_000, sourceUrl: 'https://a.example/x.jpg',
      size: bytes.length, tags: ['src-test', 'host-test'] },
  };
}
