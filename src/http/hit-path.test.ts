import { describe, expect, it } from 'vitest';
import { cacheKey, variantMaterial } from '../cache/keys.js';
import { MemoryTier } from '../cache/memory.js';
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
      form: 'query', source, canonicalSpec: 'w=800', varyAccept: false, headerOptions: { cacheControl: 'public, max-age=60' },
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
