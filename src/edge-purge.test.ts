/**
 * The purge follower's bound on waiting. Its reading of the real log in R2 is tested in workerd
 * (test/worker/edge-purge.test.ts); an R2 that never answers cannot be made there, so this one store is a stand-in
 * whose listing never yields.
 */
import { describe, expect, it } from 'vitest';
import { MemoryTier } from './cache/memory.js';
import { PurgeFence } from './cache/purge-fence.js';
import type { Store } from './cache/types.js';
import { PurgeFollower } from './edge-purge.js';
import { silentLogger } from './logger.js';

function hangingStore(): Store & { listings: number } {
  const store = {
    kind: 'hanging', listings: 0,
    get: () => new Promise<undefined>(() => {}),
    put: async () => {},
    delete: async () => false,
    deletePrefix: async () => 0,
    async *list(): AsyncIterable<string> {
      store.listings += 1;
      await new Promise(() => {});
    },
  };
  return store;
}

describe('PurgeFollower', () => {
  it('holds requests at most one poll deadline when R2 hangs; afterwards none waits, polls go on behind', async () => {
    let now = 1_000_000;
    const log = hangingStore();
    const fence = new PurgeFence();
    const background: Promise<unknown>[] = [];
    const follower = new PurgeFollower({
      log, fence, memory: new MemoryTier({ maxBytes: 1 << 20, maxEntryBytes: 1 << 20, negativeTtlMs: 1000 }),
      writer: { append: async () => undefined }, pollMs: 1000, timeoutMs: 200, logger: silentLogger,
      defer: (work) => background.push(work), now: () => now,
    });
    const started = performance.now();
    await follower.beforeRequest();
    expect(performance.now() - started).toBeLessThan(2000);
    expect(follower.stats).toMatchObject({ polls: 1, failures: 1 });
    // Never read: the store is not trusted (reads are misses) while requests go on without waiting.
    expect(follower.complete).toBe(false);
    expect(follower.beforeRequest()).toBeUndefined();
    expect(log.listings).toBe(1);
    // One interval later a request starts the next poll, in the background: it does not wait for it (it returns
    // while the store is still hanging: the poll it started has not settled yet).
    now += 1000;
    expect(follower.beforeRequest()).toBeUndefined();
    expect(background).toHaveLength(1);
    expect(log.listings).toBe(2);
    const pending = Symbol('pending');
    expect(await Promise.race([background[0].then(() => 'settled'), Promise.resolve(pending)])).toBe(pending);
    await expect(follower.purgeNow({ sources: [], hosts: [], prefixes: [], tags: [], all: true }))
      .rejects.toMatchObject({ code: 'E_UPSTREAM' });
  });
});
