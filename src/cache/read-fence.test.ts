import { describe, expect, it } from 'vitest';
import type { Selectors } from '../admin/selectors.js';
import { FencedMemoryTier, fenceStore, PurgeFence } from './read-fence.js';
import type { EntryMeta, Store, StoredEntry } from './types.js';

const SOURCE = 'https://img.example.com/2021/a.jpg';
const TAGS = ['src-abc', 'host-img.example.com'];
const none: Selectors = { sources: [], hosts: [], prefixes: [], tags: [], all: false };
const meta = (storedAt: number, sourceUrl = SOURCE, tags = TAGS): EntryMeta =>
  ({ contentType: 'image/jpeg', etag: '"e"', storedAt, expiresAt: storedAt + 60_000, sourceUrl, size: 1, tags });
const entry = (storedAt: number, sourceUrl = SOURCE): StoredEntry => ({ body: new Uint8Array([1]), meta: meta(storedAt, sourceUrl) });

describe('PurgeFence', () => {
  const cases: Array<[string, Partial<Selectors>]> = [
    ['url', { sources: [SOURCE] }], ['host', { hosts: ['img.example.com'] }],
    ['prefix', { prefixes: ['https://img.example.com/2021/'] }], ['tag', { tags: ['src-abc'] }], ['all', { all: true }],
  ];

  for (const [kind, selectors] of cases) {
    it(`covers an entry stored before a purge by ${kind}, and not one of another source or stored after the window`, () => {
      const fence = new PurgeFence({ windowMs: 1000 });
      fence.add('p1', 10_000, { ...none, ...selectors });
      expect(fence.covers(meta(9_000))).toBe(true);
      // Within the window: could be the end of a fetch that started before the purge.
      expect(fence.covers(meta(10_999))).toBe(true);
      expect(fence.covers(meta(11_000))).toBe(false);
      const other = meta(9_000, 'https://other.example.net/b.jpg', ['src-def', 'host-other.example.net']);
      expect(fence.covers(other)).toBe(kind === 'all');
    });
  }

  it('keeps the latest purge per selector, and forgets purges older than the pruning point', () => {
    const fence = new PurgeFence({ windowMs: 0 });
    fence.add('p1', 10_000, { ...none, sources: [SOURCE] });
    fence.add('p2', 20_000, { ...none, tags: ['src-abc'] });
    expect(fence.latestPurgeOf(SOURCE, TAGS)).toBe(20_000);
    expect(fence.has('p1')).toBe(true);
    fence.prune(15_000);
    expect(fence.has('p1')).toBe(false);
    expect(fence.latestPurgeOf(SOURCE, [])).toBe(0);
    expect(fence.latestPurgeOf(SOURCE, TAGS)).toBe(20_000);
  });
});

describe('fenceStore and FencedMemoryTier', () => {
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

  it('reads a covered entry as a miss and deletes it; refuses to write one; misses everything until complete', async () => {
    const inner = mapStore();
    const fence = new PurgeFence({ windowMs: 1000 });
    const background: Promise<unknown>[] = [];
    const store = fenceStore(inner, fence, (work) => background.push(work));
    inner.map.set('old', entry(5_000));
    inner.map.set('new', entry(15_000));
    inner.map.set('window', entry(10_500));
    // Not complete yet (the log was never read): nothing is served from the store.
    expect(await store.get('new')).toBeUndefined();
    fence.complete = true;
    fence.add('p1', 10_000, { ...none, sources: [SOURCE] });
    expect(await store.get('old')).toBeUndefined();
    // Within the window: a miss, but kept (in a shared store it may be another instance's fresh copy).
    expect(await store.get('window')).toBeUndefined();
    await Promise.all(background);
    expect(inner.map.has('old')).toBe(false);
    expect(inner.map.has('window')).toBe(true);
    expect((await store.get('new'))?.meta.storedAt).toBe(15_000);
    await store.put('late', entry(9_000));
    expect(inner.map.has('late')).toBe(false);
    expect(fence.fenced).toBe(3);
  });

  it('does not keep a covered entry in memory', () => {
    const fence = new PurgeFence({ windowMs: 0 });
    fence.add('p1', 10_000, { ...none, all: true });
    const memory = new FencedMemoryTier({ maxBytes: 1 << 20, maxEntryBytes: 1 << 20, negativeTtlMs: 1000 }, fence);
    memory.set('a', { ...entry(9_000), source: SOURCE });
    memory.set('b', { ...entry(11_000), source: SOURCE });
    expect(memory.get('a')).toBeUndefined();
    expect(memory.get('b')).toBeDefined();
  });
});
