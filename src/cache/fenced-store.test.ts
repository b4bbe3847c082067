/**
 * The edge's store wrapper around the one purge fence. The Cache API and R2 it wraps in production run in workerd
 * (test/worker/edge-purge.test.ts); this is the wrapper's own logic over an in-memory Map standing in for them.
 */
import { describe, expect, it } from 'vitest';
import { fenceCovers, fenceStore } from './fenced-store.js';
import { type FenceSelectors, PurgeFence } from './purge-fence.js';
import type { EntryMeta, Store, StoredEntry } from './types.js';

const SOURCE = 'https://img.example.com/2021/a.jpg';
const TAGS = ['src-abc', 'host-img.example.com'];
const NONE: FenceSelectors = { sources: [], hosts: [], prefixes: [], tags: [], all: false };
const SKEW_MS = 1000;
/** An entry of the current version: dated by when its work began. */
const meta = (startedAt: number | undefined, storedAt = startedAt ?? 0, sourceUrl = SOURCE, tags = TAGS): EntryMeta =>
  ({ contentType: 'image/jpeg', etag: '"e"', storedAt, startedAt, expiresAt: storedAt + 60_000, sourceUrl, size: 1,
    tags });
const entry = (startedAt: number | undefined, storedAt = startedAt ?? 0): StoredEntry =>
  ({ body: new Uint8Array([1]), meta: meta(startedAt, storedAt) });

function mapStore(): Store & { map: Map<string, StoredEntry> } {
  const map = new Map<string, StoredEntry>();
  return {
    kind: 'map', map,
    get: async (key) => map.get(key),
    put: async (key, value) => void map.set(key, value),
    delete: async (key) => map.delete(key),
    deletePrefix: async () => 0,
    async *list() { /* not used */ },
  };
}

describe('fenceCovers', () => {
  const cases: Array<[string, Partial<FenceSelectors>]> = [
    ['url', { sources: [SOURCE] }], ['host', { hosts: ['img.example.com'] }],
    ['prefix', { prefixes: ['https://img.example.com/2021/'] }], ['tag', { tags: ['src-abc'] }], ['all', { all: true }],
  ];

  for (const [kind, selectors] of cases) {
    it(`a purge by ${kind} covers entries begun before it or within the skew, not later ones nor other sources`, () => {
      const fence = new PurgeFence({ skewMs: SKEW_MS });
      fence.record({ ...NONE, ...selectors }, 10_000);
      expect(fenceCovers(fence, meta(9_000), 0)).toBe(true);
      // Begun within the skew: the writer's clock may be behind the purger's.
      expect(fenceCovers(fence, meta(10_999), 0)).toBe(true);
      expect(fenceCovers(fence, meta(11_000), 0)).toBe(false);
      const other = meta(9_000, 9_000, 'https://other.example.net/b.jpg', ['src-def', 'host-other.example.net']);
      expect(fenceCovers(fence, other, 0)).toBe(kind === 'all');
    });
  }

  it('judges an entry of an older version (no startedAt) by storedAt, within the longer legacy window', () => {
    const fence = new PurgeFence({ skewMs: SKEW_MS });
    fence.record({ ...NONE, sources: [SOURCE] }, 10_000);
    // storedAt is when a load ENDED: 30 s after the purge it may still hold bytes fetched before it.
    expect(fenceCovers(fence, meta(undefined, 40_000), 41_000)).toBe(true);
    expect(fenceCovers(fence, meta(undefined, 51_000), 41_000)).toBe(false);
    // The same storedAt with a startedAt after the skew: the entry says when its work began, no window needed.
    expect(fenceCovers(fence, meta(40_000, 40_000), 41_000)).toBe(false);
  });
});

describe('fenceStore', () => {
  it('reads a covered entry as a miss and deletes it; refuses to write one; misses everything until ready', async () => {
    const inner = mapStore();
    const fence = new PurgeFence({ skewMs: SKEW_MS });
    const background: Array<Promise<unknown>> = [];
    let ready = false;
    const store = fenceStore(inner, fence, { ready: () => ready, legacyWindowMs: 41_000,
      defer: (work) => background.push(work) });
    inner.map.set('old', entry(5_000, 12_000));
    inner.map.set('new', entry(15_000));
    inner.map.set('skew', entry(10_500));
    inner.map.set('legacy', entry(undefined, 30_000));
    // Not ready yet (the log was never read whole): nothing is served from the store.
    expect(await store.get('new')).toBeUndefined();
    ready = true;
    fence.record({ ...NONE, sources: [SOURCE] }, 10_000);
    // Begun before the purge, stored after it: still the old bytes.
    expect(await store.get('old')).toBeUndefined();
    // Within the skew: a miss, but kept (in a shared store it may be another instance's fresh copy).
    expect(await store.get('skew')).toBeUndefined();
    expect(await store.get('legacy')).toBeUndefined();
    await Promise.all(background);
    expect(inner.map.has('old')).toBe(false);
    expect(inner.map.has('skew')).toBe(true);
    expect((await store.get('new'))?.meta.startedAt).toBe(15_000);
    await store.put('late', entry(9_000, 20_000));
    expect(inner.map.has('late')).toBe(false);
    await store.put('fresh', entry(12_000));
    expect(inner.map.has('fresh')).toBe(true);
    expect(fence.stats().fenced).toMatchObject({ read: 3, write: 1 });
  });

  it('never serves a late write once the fence has forgotten its purge: entries begun before the horizon are misses', async () => {
    const DAY = 86_400_000;
    let now = 10_000;
    const inner = mapStore();
    const fence = new PurgeFence({ skewMs: SKEW_MS, retentionMs: DAY, now: () => now });
    const store = fenceStore(inner, fence, { ready: () => true, legacyWindowMs: 41_000, defer: () => {},
      horizonMs: DAY - 3_600_000, now: () => now });
    fence.record({ ...NONE, sources: [SOURCE] }, 10_000);
    // Another instance's write of bytes fetched before the purge lands after the purge deleted the store's copies.
    inner.map.set('late', entry(9_500, 10_200));
    // Nobody reads it while the fence knows the purge (a read would have deleted it).
    // A day on, the fence has forgotten the purge; the late entry must still not come back.
    now += DAY + 1;
    fence.record({ ...NONE, sources: ['https://other.example.net/b.jpg'] }); // the fence prunes as it records
    expect(fence.predatesPurge(9_500, SOURCE, TAGS)).toBe(false);
    expect(await store.get('late')).toBeUndefined();
    // An entry begun within the horizon is still served.
    inner.map.set('recent', entry(now - 60_000));
    expect((await store.get('recent'))?.meta.startedAt).toBe(now - 60_000);
  });
});
