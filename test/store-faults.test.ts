/**
 * A failing persistent store is a miss, never an error and never a wait: the guard (deadline, breaker) around a
 * real S3 protocol server that is stopped, restarted, or replaced by a listener that never answers; and the
 * write-behind queue in front of it, including reading back entries whose write has not ended.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createFsStore } from '../src/cache/fs-store.js';
import { PurgeFence } from '../src/cache/purge-fence.js';
import { cacheKey, SOURCE_VARIANT } from '../src/cache/keys.js';
import { MemoryTier } from '../src/cache/memory.js';
import { type Loader, TieredCache } from '../src/cache/tiered.js';
import { createS3Store } from '../src/cache/s3-store.js';
import { guardStore, type GuardedStore } from '../src/cache/store-guard.js';
import type { Store, StoredEntry } from '../src/cache/types.js';
import { createWriteBehind } from '../src/cache/write-behind.js';
import { silentLogger } from '../src/logger.js';
import { until } from './helpers/admin.js';
import { type HangingServer, s3StoreOptions, startHangingServer, startS3, type TestS3 } from './helpers/s3.js';

const hex64 = () => randomBytes(32).toString('hex');
const keyOf = () => `${hex64()}/source`;
const entryOf = (fill: number): StoredEntry => ({
  body: new Uint8Array(64).fill(fill),
  meta: { contentType: 'image/png', etag: `"${fill}"`, storedAt: 1, expiresAt: 2, sourceUrl: 'https://a.example/p.png',
    size: 64, tags: [] },
});

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function s3Server(): Promise<TestS3> {
  const s3 = await startS3();
  cleanups.push(() => s3.close());
  return s3;
}

function s3Store(endpoint: string, bucket = 'imgrelay-test'): Store {
  const store = createS3Store(s3StoreOptions({ endpoint, bucket }, 'faults'));
  cleanups.push(async () => store.close?.());
  return store;
}

/** Runs `call`, returning its result and how long it took. */
async function timed<T>(call: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const started = performance.now();
  const value = await call();
  return { value, ms: performance.now() - started };
}

describe('guarded S3 store, server stopped and restarted', () => {
  it('turns failures into fast misses, opens the breaker, then closes it once the server is back', async () => {
    const s3 = await s3Server();
    const timeoutMs = 1000;
    const guarded = guardStore(s3Store(s3.endpoint), {
      timeoutMs, logger: silentLogger, breaker: { failures: 3, coolDownMs: 500 },
    });
    const stored = keyOf();
    await guarded.put(stored, entryOf(1));
    expect((await guarded.get(stored))?.meta.etag).toBe('"1"');

    await s3.stop();
    for (let i = 0; i < 3; i++) {
      const { value, ms } = await timed(() => guarded.get(stored));
      expect(value).toBeUndefined();
      expect(ms).toBeLessThan(timeoutMs + 2000);
    }
    expect(guarded.errors).toBe(3);
    expect(guarded.state()).toBe('open');

    // Open: calls answer as misses without reaching the store (no new errors), writes resolve.
    const skippedBefore = guarded.skipped;
    expect(await guarded.get(stored)).toBeUndefined();
    await expect(guarded.put(keyOf(), entryOf(2))).resolves.toBeUndefined();
    expect(await guarded.delete(stored)).toBe(false);
    expect(guarded.errors).toBe(3);
    expect(guarded.skipped).toBe(skippedBefore + 3);

    await s3.restart();
    await until(() => guarded.state() === 'half-open', 5000);
    expect((await guarded.get(stored))?.meta.etag).toBe('"1"'); // the probe: data survived the restart
    expect(guarded.state()).toBe('closed');

    const fresh = keyOf();
    expect(await guarded.putChecked(fresh, entryOf(3))).toBe(true);
    expect((await guarded.get(fresh))?.meta.etag).toBe('"3"');
    expect(guarded.errors).toBe(3);
  });

  it('re-opens the breaker when the half-open probe fails', async () => {
    const s3 = await s3Server();
    const guarded = guardStore(s3Store(s3.endpoint), {
      timeoutMs: 1000, logger: silentLogger, breaker: { failures: 2, coolDownMs: 300 },
    });
    await s3.stop();
    await guarded.get(keyOf());
    await guarded.get(keyOf());
    expect(guarded.state()).toBe('open');
    await until(() => guarded.state() === 'half-open', 5000);
    expect(await guarded.get(keyOf())).toBeUndefined();
    expect(guarded.errors).toBe(3);
    expect(guarded.state()).toBe('open');
  });
});

describe('guarded S3 store, server that never answers', () => {
  let hanging: HangingServer;
  const open = async (timeoutMs: number) => {
    hanging = await startHangingServer();
    cleanups.push(() => hanging.stop());
    return guardStore(s3Store(hanging.endpoint), {
      timeoutMs, bulkTimeoutMs: timeoutMs, logger: silentLogger, breaker: { failures: 100, coolDownMs: 5000 },
    });
  };

  it('answers every kind of call within the store deadline', async () => {
    const timeoutMs = 500;
    const guarded = await open(timeoutMs);
    const calls: Array<() => Promise<unknown>> = [
      () => guarded.get(keyOf()),
      () => guarded.head!(keyOf()),
      () => guarded.put(keyOf(), entryOf(1)),
      () => guarded.delete(keyOf()),
      () => guarded.deletePrefix(hex64()),
      async () => {
        const keys: string[] = [];
        for await (const key of guarded.list(`${hex64()}/`)) keys.push(key);
        return keys;
      },
    ];
    const results = await Promise.all(calls.map((call) => timed(call)));
    expect(results.map((r) => r.value)).toEqual([undefined, undefined, undefined, false, 0, []]);
    for (const { ms } of results) expect(ms).toBeLessThan(timeoutMs + 2000);
    expect(guarded.errors).toBe(calls.length);
    expect(hanging.connections).toBeGreaterThan(0); // the calls really went out and were left unanswered
  });

  it('gives up when the caller aborts, without counting it against the store', async () => {
    const guarded = await open(5000);
    const { value, ms } = await timed(() => guarded.get(keyOf(), AbortSignal.timeout(200)));
    expect(value).toBeUndefined();
    expect(ms).toBeLessThan(200 + 2000);
    expect(guarded.errors).toBe(0);
  });
});

describe('write-behind', () => {
  it('drops and counts writes once the queue is full', async () => {
    const hanging = await startHangingServer();
    cleanups.push(() => hanging.stop());
    const guarded: GuardedStore = guardStore(s3Store(hanging.endpoint), {
      timeoutMs: 1000, logger: silentLogger, breaker: { failures: 100, coolDownMs: 5000 },
    });
    const writes = createWriteBehind(guarded, { maxQueue: 5, concurrency: 2, logger: silentLogger });
    const keys = Array.from({ length: 10 }, keyOf);
    const accepted = keys.map((key, i) => writes.enqueue(key, entryOf(i)));
    // 2 in flight (hanging), 5 waiting, 3 dropped.
    expect(accepted).toEqual([true, true, true, true, true, true, true, false, false, false]);
    expect(writes.stats()).toMatchObject({ queued: 7, dropped: 3, written: 0 });
    // Re-queuing a waiting key replaces its entry and takes no extra room.
    expect(writes.enqueue(keys[4], entryOf(99))).toBe(true);
    expect(writes.stats()).toMatchObject({ queued: 7, dropped: 3 });
    // A drain never outlives its deadline, even with writes hanging.
    const { ms } = await timed(() => writes.drain(200));
    expect(ms).toBeLessThan(200 + 2000);
  });

  it('drain waits for every queued write to land', async () => {
    const s3 = await s3Server();
    const raw = s3Store(s3.endpoint);
    const writes = createWriteBehind(guardStore(raw, { timeoutMs: 5000, logger: silentLogger }),
      { maxQueue: 100, concurrency: 4, logger: silentLogger });
    const keys = Array.from({ length: 20 }, keyOf);
    for (const [i, key] of keys.entries()) expect(writes.enqueue(key, entryOf(i))).toBe(true);
    await writes.drain(20_000);
    expect(writes.stats()).toEqual({ queued: 0, queuedBytes: 0, dropped: 0, written: 20, failed: 0, fenced: 0 });
    for (const [i, key] of keys.entries()) expect((await raw.get(key))?.meta.etag).toBe(`"${i}"`);
  });

  it('a queued write whose work a purge fenced is dropped as it starts: counted, never lands', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'imgrelay-wb-'));
    const store = createFsStore({ dir, maxBytes: 1 << 20, logger: silentLogger });
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const fence = new PurgeFence();
    const source = 'http://a.example/x.png';
    const writes = createWriteBehind(store, { maxQueue: 10, concurrency: 1, logger: silentLogger,
      admit: (entry) => fence.admits(entry, 'write') });
    const [first, second] = [keyOf(), keyOf()];
    const [old, other] = [entryOf(1), entryOf(2)];
    fence.stamp(old, fence.ticket(), source);
    fence.stamp(other, fence.ticket(), 'http://b.example/y.png');
    writes.enqueue(keyOf(), entryOf(0)); // takes the one writer: the two below wait in the queue
    writes.enqueue(first, old);
    writes.enqueue(second, other);
    fence.record({ sources: [source], hosts: [], prefixes: [], tags: [], all: false });
    await writes.drain(10_000);
    expect(writes.stats()).toMatchObject({ queued: 0, written: 2, fenced: 1 });
    expect(await store.get(first)).toBeUndefined();
    expect((await store.get(second))?.meta.etag).toBe('"2"');
  });

  it('writes a key queued several times once more, with its newest entry', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'imgrelay-wb-'));
    const store = createFsStore({ dir, maxBytes: 1 << 20, logger: silentLogger });
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const writes = createWriteBehind(store, { maxQueue: 10, concurrency: 4, logger: silentLogger });
    const key = keyOf();
    for (const fill of [1, 2, 3]) writes.enqueue(key, entryOf(fill)); // 1 starts at once; 3 replaces 2 while waiting
    expect(writes.peek(key)?.meta.etag).toBe('"3"'); // read back: the newest, while 1 is still being written
    await writes.drain(10_000);
    expect(writes.peek(key)).toBeUndefined(); // landed: reads go to the store now
    expect((await store.get(key))?.meta.etag).toBe('"3"');
    expect(writes.stats()).toMatchObject({ written: 2, dropped: 0, failed: 0 });
  });

  it('reads back an entry while its write hangs, and not once the write has failed', async () => {
    const hanging = await startHangingServer();
    cleanups.push(() => hanging.stop());
    const guarded = guardStore(s3Store(hanging.endpoint), { timeoutMs: 300, logger: silentLogger });
    const writes = createWriteBehind(guarded, { maxQueue: 1, concurrency: 1, logger: silentLogger });
    const [held, waiting, dropped] = [keyOf(), keyOf(), keyOf()];
    writes.enqueue(held, entryOf(1)); // in flight, hanging
    writes.enqueue(waiting, entryOf(2)); // the one waiting place
    expect(writes.enqueue(dropped, entryOf(3))).toBe(false);
    expect(writes.peek(held)?.meta.etag).toBe('"1"');
    expect(writes.peek(waiting)?.meta.etag).toBe('"2"');
    expect(writes.peek(dropped)).toBeUndefined();
    await writes.drain(10_000);
    expect(writes.stats()).toMatchObject({ failed: 2 });
    expect(writes.peek(held)).toBeUndefined();
  });

  it('lets the tiered cache take an input whose write has not landed from the queue, not from its loader', async () => {
    const hanging = await startHangingServer();
    cleanups.push(() => hanging.stop());
    const guarded = guardStore(s3Store(hanging.endpoint), { timeoutMs: 300, logger: silentLogger });
    const writes = createWriteBehind(guarded, { maxQueue: 8, logger: silentLogger });
    const memory = new MemoryTier({ maxBytes: 1 << 20, maxEntryBytes: 1 << 20, negativeTtlMs: 1 });
    const cache = new TieredCache({ memory, store: guarded, writes, logger: silentLogger, defer: () => undefined });
    let loads = 0;
    const loader: Loader = { load: async () => entryOf(++loads), revalidate: async (stale) => stale };
    const source = cacheKey('https://a.example/p.png', SOURCE_VARIANT);
    expect((await cache.get(source, loader, { input: true })).state).toBe('MISS');
    expect(memory.stats().entries).toBe(0); // an input stays out of memory when a store will hold it
    // The store never answers (its write hangs): the second read finds the entry in the write queue.
    expect((await cache.get(source, loader, { input: true })).entry.meta.etag).toBe('"1"');
    expect(loads).toBe(1);
    await writes.drain(10_000);
  });

  it('counts a write the store refused as failed', async () => {
    const s3 = await s3Server();
    await s3.stop();
    const guarded = guardStore(s3Store(s3.endpoint), { timeoutMs: 1000, logger: silentLogger });
    const writes = createWriteBehind(guarded, { maxQueue: 10, logger: silentLogger });
    writes.enqueue(keyOf(), entryOf(1));
    await writes.drain(10_000);
    expect(writes.stats()).toMatchObject({ queued: 0, written: 0, failed: 1 });
    expect(guarded.errors).toBe(1);
  });
});
