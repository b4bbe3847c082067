/**
 * The tiered cache under purges that overtake its work (memory tier and fence are the real ones; no store): a load or
 * revalidation whose result a purge fenced never hands those pre-purge bytes to anyone.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createFsStore } from './fs-store.js';
import { storeKey } from './keys.js';
import { RelayError } from '../errors.js';
import { silentLogger } from '../logger.js';
import { cacheKey, SOURCE_VARIANT } from './keys.js';
import { MemoryTier } from './memory.js';
import { PurgeFence } from './purge-fence.js';
import { type Loader, TieredCache } from './tiered.js';
import type { StoredEntry } from './types.js';

const SOURCE = 'https://a.example/p.png';
const purgeOf = (source: string) => ({ sources: [source], hosts: [], prefixes: [], tags: [], all: false });

function entryOf(fill: number, expiresAt = Date.now() + 60_000): StoredEntry {
  return { body: new Uint8Array(16).fill(fill), meta: { contentType: 'image/png', etag: `"${fill}"`, storedAt: Date.now(),
    expiresAt, sourceUrl: SOURCE, size: 16, tags: [] } };
}

function setup() {
  const fence = new PurgeFence();
  const memory = new MemoryTier({ maxBytes: 1 << 20, maxEntryBytes: 1 << 20, negativeTtlMs: 1000 });
  const cache = new TieredCache({ memory, logger: silentLogger, defer: () => undefined, fence });
  return { fence, memory, cache, key: cacheKey(SOURCE, SOURCE_VARIANT) };
}

describe('tiered cache behind the purge fence', () => {
  it('answers 503 E_OVERLOADED (Retry-After 1) when purges keep fencing every reload, never the pre-purge bytes', async () => {
    const { fence, memory, cache, key } = setup();
    let loads = 0;
    // Every load is overtaken by a purge of its source before it ends.
    const loader: Loader = { load: async () => {
      loads += 1;
      fence.record(purgeOf(SOURCE));
      return entryOf(loads);
    }, revalidate: async (stale) => stale };
    const failure = await cache.get(key, loader).then(() => undefined, (error: unknown) => error);
    expect(failure).toBeInstanceOf(RelayError);
    expect([(failure as RelayError).code, (failure as RelayError).status, (failure as RelayError).retryAfter])
      .toEqual(['E_OVERLOADED', 503, 1]);
    expect(loads).toBe(9); // the first load and 8 reloads: bounded
    expect(memory.stats().entries).toBe(0);
  });

  it('serves the reload when a purge overtook only the first load', async () => {
    const { fence, cache, key } = setup();
    let loads = 0;
    const loader: Loader = { load: async () => {
      loads += 1;
      if (loads === 1) fence.record(purgeOf(SOURCE));
      return entryOf(loads);
    }, revalidate: async (stale) => stale };
    const loaded = await cache.get(key, loader);
    expect([loaded.state, loaded.entry.meta.etag, loads]).toEqual(['MISS', '"2"', 2]);
  });

  it('a revalidation overtaken by a purge hands out a fresh load, not the revalidated (pre-purge) entry', async () => {
    const { fence, memory, cache, key } = setup();
    const stale = entryOf(1, Date.now() - 1000);
    let loads = 0;
    const loader: Loader = {
      load: async () => entryOf(10 + ++loads),
      // A 304 for the old bytes, answered while the admin purged the source.
      revalidate: async (old) => {
        fence.record(purgeOf(SOURCE));
        return { body: old.body, meta: { ...old.meta, expiresAt: Date.now() + 60_000 } };
      },
    };
    const refreshed = await cache.refresh(key, loader, stale);
    expect([refreshed.meta.etag, loads]).toEqual(['"11"', 1]);
    expect(memory.get(key.memory)?.meta.etag).toBe('"11"');
  });
});

describe('tiered cache before every purge is known', () => {
  it('reads the store as a miss until the purge log was read whole, then serves from it', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'imgrelay-tiered-'));
    try {
      const store = createFsStore({ dir, maxBytes: 1 << 20, logger: silentLogger });
      const key = cacheKey(SOURCE, SOURCE_VARIANT);
      // Maybe a late write of bytes a purge made before this process started, which its fence does not know yet.
      await store.put(await storeKey(key), { ...entryOf(7), meta: { ...entryOf(7).meta, startedAt: Date.now() } });
      let known = false;
      const memory = new MemoryTier({ maxBytes: 1 << 20, maxEntryBytes: 1 << 20, negativeTtlMs: 1000 });
      const cache = new TieredCache({ memory, store, logger: silentLogger, defer: () => undefined, fence: new PurgeFence(),
        storeReady: () => known });
      let loads = 0;
      const loader: Loader = { load: async () => entryOf(20 + ++loads), revalidate: async (stale) => stale };
      expect(await cache.lookupFresh(key)).toBeUndefined();
      const before = await cache.get(key, loader);
      expect([before.state, before.entry.meta.etag]).toEqual(['MISS', '"21"']);
      known = true;
      memory.clear();
      const after = await cache.get(key, loader);
      expect([after.state, after.entry.meta.etag, loads]).toEqual(['HIT-STORE', '"7"', 1]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
