import { describe, expect, it } from 'vitest';
import { cacheKey, variantMaterial } from '../cache/keys.js';
import { MemoryTier } from '../cache/memory.js';
import { cachePolicy } from './cache-control.js';
import { HitPath, type RouteInfo, routeBound } from './hit-path.js';

const MiB = 1024 * 1024;

/** A memory tier holding a fresh 800w JPEG of each source, and the route the full path would have learned for it. */
function served(sources: string[]) {
  const memory = new MemoryTier({ maxBytes: 64 * MiB, maxEntryBytes: MiB, negativeTtlMs: 1000 });
  const routes = new Map<string, RouteInfo>();
  for (const source of sources) {
    const body = new Uint8Array(1000);
    memory.set(cacheKey(source, variantMaterial('w=800', undefined)).memory, {
      body, source,
      meta: {
        contentType: 'image/jpeg', etag: '"e"', storedAt: 1, expiresAt: Date.now() + 60_000, size: body.byteLength,
        sourceUrl: source, tags: [],
      },
    });
    routes.set(`/?url=${source}&w=800`, {
      form: 'query', source, canonicalSpec: 'w=800', varyAccept: false, caching: cachePolicy('public, max-age=60', 86_400),
      headerOptions: {},
    });
  }
  return { memory, routes };
}

describe('the fast path\'s memory is bounded by the tier\'s', () => {
  it('remembers one URL per 32 KiB of memory tier, between 1,000 and 50,000', () => {
    expect(routeBound(256 * MiB)).toBe(8192);
    expect(routeBound(0)).toBe(1000);
    expect(routeBound(64 * 1024 * MiB)).toBe(50_000);
  });

  it('forgets the least recently served URL beyond its bound (that URL takes the full path again)', () => {
    const { memory, routes } = served(['http://a.test/1.jpg', 'http://a.test/2.jpg', 'http://a.test/3.jpg']);
    const hits = new HitPath(memory, undefined, { maxRoutes: 2 });
    const [first, second, third] = [...routes.keys()];
    hits.remember(first, routes.get(first)!);
    hits.remember(second, routes.get(second)!);
    expect(hits.lookup(first, undefined)?.state).toBe('HIT-MEMORY'); // served again: now the most recent
    hits.remember(third, routes.get(third)!);
    expect(hits.lookup(second, undefined)).toBeUndefined();
    expect(hits.lookup(first, undefined)?.body.byteLength).toBe(1000);
    expect(hits.lookup(third, undefined)?.body.byteLength).toBe(1000);
  });
});

describe('the fast path\'s caching headers follow the entry', () => {
  it('sends Age and Cache-Control for the moment of each hit, rebuilding them once per second of age', () => {
    const source = 'http://a.test/age.jpg';
    const memory = new MemoryTier({ maxBytes: MiB, maxEntryBytes: MiB, negativeTtlMs: 1000 });
    const fetchedAt = 1_000_000;
    memory.set(cacheKey(source, variantMaterial('w=800', undefined)).memory, {
      body: new Uint8Array(10), source,
      meta: { contentType: 'image/jpeg', etag: '"e"', storedAt: fetchedAt, expiresAt: fetchedAt + 60_000, ttlMs: 60_000,
        size: 10, sourceUrl: source, tags: [] },
    });
    let now = fetchedAt + 200;
    const hits = new HitPath(memory, undefined, { now: () => now });
    hits.remember('/u', { form: 'query', source, canonicalSpec: 'w=800', varyAccept: false, headerOptions: {},
      caching: cachePolicy('public, max-age=86400, s-maxage=2592000', 86_400) });
    const first = hits.lookup('/u', undefined)!.headers;
    expect(first).toMatchObject({ age: '0', 'cache-control': 'public, max-age=60, s-maxage=60' });
    now += 500;
    expect(hits.lookup('/u', undefined)!.headers).toBe(first); // same second of age: the same prepared object
    now = fetchedAt + 41_300;
    expect(hits.lookup('/u', undefined)!.headers).toMatchObject({ age: '41', 'cache-control': 'public, max-age=60, s-maxage=60' });
    now = fetchedAt + 60_000;
    expect(hits.lookup('/u', undefined)).toBeUndefined(); // expired: the full path serves it STALE
  });
});
