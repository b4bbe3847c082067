/**
 * The write-behind queue's read-back: an entry stays readable from the queue until its write to the store has
 * ended, so a read in between never misses both. The store is the real directory store; the test only holds its
 * writes at a gate (no real store can be paused mid-write on demand), and every write still lands in it.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../logger.js';
import { createFsStore } from './fs-store.js';
import { cacheKey, SOURCE_VARIANT } from './keys.js';
import { MemoryTier } from './memory.js';
import { type Loader, TieredCache } from './tiered.js';
import type { Store, StoredEntry } from './types.js';
import { createWriteBehind } from './write-behind.js';

const dirs: string[] = [];
afterEach(async () => {
  await Promise.all(dirs.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
});

function entryOf(fill: number): StoredEntry {
  return {
    body: new Uint8Array(64).fill(fill),
    meta: { contentType: 'image/jpeg', etag: `"${fill}"`, storedAt: 1, expiresAt: 2, sourceUrl: 'https://a.example/x.jpg',
      size: 64, tags: [] },
  };
}

/** The real fs store, its puts held until `open()` is called. */
async function gatedStore(): Promise<{ store: Store; open: () => void }> {
  const dir = await mkdtemp(join(tmpdir(), 'imgrelay-write-behind-'));
  dirs.push(dir);
  const real = createFsStore({ dir, maxBytes: 1 << 20, logger: silentLogger });
  let open!: () => void;
  const gate = new Promise<void>((resolve) => { open = resolve; });
  const store: Store = {
    ...real, kind: real.kind, get: real.get.bind(real), delete: real.delete.bind(real),
    deletePrefix: real.deletePrefix.bind(real), list: real.list.bind(real),
    put: async (key, entry, signal) => {
      await gate;
      return real.put(key, entry, signal);
    },
  };
  return { store, open };
}

const key = `${randomBytes(32).toString('hex')}/source`;

describe('write-behind read-back', () => {
  it('answers from the queue while the write is on its way, then leaves reads to the store', async () => {
    const { store, open } = await gatedStore();
    const writes = createWriteBehind(store, { maxQueue: 8, logger: silentLogger });
    const entry = entryOf(1);
    writes.enqueue(key, entry);
    expect(await store.get(key)).toBeUndefined();
    expect(writes.peek(key)).toBe(entry);
    open();
    await writes.drain(5_000);
    expect(writes.peek(key)).toBeUndefined();
    expect((await store.get(key))?.meta.etag).toBe('"1"');
  });

  it('reads back the newest entry when a key is queued again during its write, and lands that one', async () => {
    const { store, open } = await gatedStore();
    const writes = createWriteBehind(store, { maxQueue: 8, logger: silentLogger });
    writes.enqueue(key, entryOf(1)); // in flight, held at the gate
    const newer = entryOf(2);
    writes.enqueue(key, newer);
    expect(writes.peek(key)).toBe(newer);
    open();
    await writes.drain(5_000);
    expect(writes.peek(key)).toBeUndefined();
    expect((await store.get(key))?.meta.etag).toBe('"2"');
  });

  it('has nothing to read back for a write the full queue dropped', async () => {
    const { store, open } = await gatedStore();
    const writes = createWriteBehind(store, { maxQueue: 1, concurrency: 1, logger: silentLogger });
    const other = (n: number) => `${randomBytes(32).toString('hex')}/${n}`;
    writes.enqueue(other(1), entryOf(1)); // in flight
    writes.enqueue(other(2), entryOf(2)); // the one waiting place
    expect(writes.enqueue(key, entryOf(3))).toBe(false);
    expect(writes.peek(key)).toBeUndefined();
    open();
    await writes.drain(5_000);
  });
});

describe('the tiered cache reading an input', () => {
  it('takes a source whose store write has not landed from the write queue, not from its loader again', async () => {
    const { store, open } = await gatedStore();
    const writes = createWriteBehind(store, { maxQueue: 8, logger: silentLogger });
    const memory = new MemoryTier({ maxBytes: 1 << 20, maxEntryBytes: 1 << 20, negativeTtlMs: 0 });
    const cache = new TieredCache({ memory, store, writes, logger: silentLogger, defer: () => undefined });
    let loads = 0;
    const loader: Loader = {
      load: async () => entryOf(++loads),
      revalidate: async (stale) => stale,
    };
    const source = cacheKey('https://a.example/x.jpg', SOURCE_VARIANT);
    expect((await cache.get(source, loader, { input: true })).state).toBe('MISS');
    expect(memory.stats().entries).toBe(0); // an input stays out of memory: the store will hold it
    const again = await cache.get(source, loader, { input: true });
    expect(again.entry.meta.etag).toBe('"1"');
    expect(loads).toBe(1);
    open();
    await writes.drain(5_000);
  });
});
