/** The memory tier's byte accounting: what it counts must be what it holds. */
import { describe, expect, it } from 'vitest';
import { ENTRY_OVERHEAD as OVERHEAD, type MemoryEntry, MemoryTier } from './memory.js';

const tier = (maxBytes = 1 << 20, maxEntryBytes = 1 << 20) => new MemoryTier({ maxBytes, maxEntryBytes, negativeTtlMs: 1000 });

const entry = (body: Uint8Array, source = 'https://a.test/x.jpg'): MemoryEntry => ({
  body, source,
  meta: { contentType: 'image/jpeg', etag: '"e"', storedAt: 0, expiresAt: 1, sourceUrl: source, size: body.byteLength, tags: [] },
});

describe('MemoryTier accounting', () => {
  it('counts body bytes plus the key and a fixed overhead per entry', () => {
    const memory = tier();
    memory.set('k1', entry(new Uint8Array(1000)));
    memory.set('k2', entry(new Uint8Array(3000)));
    expect(memory.stats()).toMatchObject({ entries: 2, bytes: 1000 + 3000 + 2 * (2 + OVERHEAD) });
  });

  it('holds an exact-size copy of a body that is a view into a larger buffer', () => {
    const file = new Uint8Array(64 * 1024).fill(7);
    const view = file.subarray(100, 1100);
    const memory = tier();
    memory.set('k', entry(view));
    const held = memory.get('k')!.body;
    expect(held.byteLength).toBe(1000);
    expect(held.buffer.byteLength).toBe(1000);
    expect(held.buffer).not.toBe(file.buffer);
    expect(Array.from(held.subarray(0, 3))).toEqual([7, 7, 7]);
  });

  it('copies Node Buffers too (Buffer#slice would share the pooled slab)', () => {
    const pooled = Buffer.from('small body'); // from the 8 KiB Buffer pool
    const memory = tier();
    memory.set('k', entry(pooled));
    const held = memory.get('k')!.body;
    expect(held.buffer.byteLength).toBe(pooled.byteLength);
    expect(Buffer.from(held).toString()).toBe('small body');
  });

  it('refuses an entry over the per-entry cap and evicts the oldest past the budget', () => {
    const memory = tier(3 * (1000 + 2 + OVERHEAD), 1000 + 2 + OVERHEAD);
    memory.set('xx', entry(new Uint8Array(1001)));
    expect(memory.get('xx')).toBeUndefined();
    for (const key of ['k1', 'k2', 'k3', 'k4']) memory.set(key, entry(new Uint8Array(1000)));
    expect(memory.get('k1')).toBeUndefined();
    expect(memory.stats()).toMatchObject({ entries: 3, bytes: 3 * (1000 + 2 + OVERHEAD) });
  });

  it('stores nothing with a zero budget', () => {
    const memory = tier(0);
    memory.set('k', entry(new Uint8Array(10)));
    expect(memory.get('k')).toBeUndefined();
    expect(memory.stats().bytes).toBe(0);
  });
});
