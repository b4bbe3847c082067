/**
 * The write-behind queue is bounded in bytes, not only by count: its bodies count against the in-flight byte budget
 * (IMGRELAY_MAX_INFLIGHT_MB) from enqueue until their write ends, so a store that stops answering cannot make the
 * process hold hundreds of large sources. The store is a real S3-protocol listener that never answers.
 */
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { createS3Store } from '../src/cache/s3-store.js';
import { guardStore } from '../src/cache/store-guard.js';
import type { StoredEntry } from '../src/cache/types.js';
import { createWriteBehind } from '../src/cache/write-behind.js';
import { ByteBudget } from '../src/limits/byte-budget.js';
import { silentLogger } from '../src/logger.js';
import { s3StoreOptions, startHangingServer } from './helpers/s3.js';

const MiB = 1024 * 1024;
const keyOf = () => `${randomBytes(32).toString('hex')}/source`;
const entryOf = (bytes: number, fill = 1): StoredEntry => ({
  body: new Uint8Array(bytes).fill(fill),
  meta: { contentType: 'image/png', etag: `"${fill}"`, storedAt: 1, expiresAt: 2, sourceUrl: 'https://a.example/p.png',
    size: bytes, tags: [] },
});

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function hangingWrites(budget: ByteBudget) {
  const hanging = await startHangingServer();
  cleanups.push(() => hanging.stop());
  const store = createS3Store(s3StoreOptions({ endpoint: hanging.endpoint, bucket: 'imgrelay-test' }, 'bytes'));
  cleanups.push(async () => store.close?.());
  const guarded = guardStore(store, { timeoutMs: 500, logger: silentLogger, breaker: { failures: 100, coolDownMs: 5000 } });
  return createWriteBehind(guarded, { maxQueue: 1000, concurrency: 2, logger: silentLogger, budget });
}

describe('write-behind byte bound', () => {
  it('drops writes past the byte budget though the count bound is far away, and gives the bytes back', async () => {
    const budget = new ByteBudget(20 * MiB);
    const writes = await hangingWrites(budget);
    const accepted = Array.from({ length: 10 }, () => writes.enqueue(keyOf(), entryOf(4 * MiB)));
    // 5 × 4 MiB fit in 20 MiB; the count bound (1000) would have taken all 10 (40 MiB held for a dead store).
    expect(accepted).toEqual([true, true, true, true, true, false, false, false, false, false]);
    expect(writes.stats()).toMatchObject({ queued: 5, queuedBytes: 20 * MiB, dropped: 5 });
    expect(budget.usedBytes).toBe(20 * MiB);
    // The hanging writes fail at the store deadline; their bytes come back to the budget.
    await writes.drain(10_000);
    expect(writes.stats()).toMatchObject({ queued: 0, queuedBytes: 0, failed: 5 });
    expect(budget.usedBytes).toBe(0);
    expect(writes.enqueue(keyOf(), entryOf(4 * MiB))).toBe(true);
  });

  it('a key queued again counts only its newest entry', async () => {
    const budget = new ByteBudget(64 * MiB);
    const writes = await hangingWrites(budget);
    writes.enqueue(keyOf(), entryOf(1 * MiB));
    writes.enqueue(keyOf(), entryOf(1 * MiB)); // both writing (concurrency 2)
    const key = keyOf();
    writes.enqueue(key, entryOf(8 * MiB, 1));
    writes.enqueue(key, entryOf(2 * MiB, 2)); // replaces the waiting 8 MiB entry
    expect(writes.stats().queuedBytes).toBe(4 * MiB);
    expect(budget.usedBytes).toBe(4 * MiB);
    expect(writes.peek(key)?.meta.etag).toBe('"2"');
  });
});
