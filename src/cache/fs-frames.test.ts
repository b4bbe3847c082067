/**
 * The directory store keeps descriptors of recently read files open (fs-frames.ts): a replaced, deleted, purged or
 * evicted entry must never be served through one of them afterwards, and a descriptor is never closed under a read.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../logger.js';
import { createFsStore } from './fs-store.js';
import type { StoredEntry } from './types.js';

const hex64 = () => randomBytes(32).toString('hex');
const dirs: string[] = [];
afterEach(async () => {
  await Promise.all(dirs.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
});

async function openStore(maxBytes = 1 << 20) {
  const dir = await mkdtemp(join(tmpdir(), 'imgrelay-fs-frames-'));
  dirs.push(dir);
  const store = createFsStore({ dir, maxBytes, logger: silentLogger });
  await store.ready;
  return store;
}

/** Same size for every `fill` and `expiresAt`: a replaced entry is told apart only by its bytes. */
const entry = (fill: number, expiresAt = 2, bytes = 1000): StoredEntry => ({
  body: new Uint8Array(bytes).fill(fill),
  meta: { contentType: 'image/jpeg', etag: `"e${fill}"`, storedAt: 1, expiresAt, sourceUrl: 'https://a.example/x.jpg',
    size: bytes, tags: [] },
});

describe('fs store descriptors', () => {
  it('serves a replaced entry (same size) after the put, never the old bytes or meta', async () => {
    const store = await openStore();
    const key = `${hex64()}/source`;
    await store.put(key, entry(1, 2));
    expect((await store.get(key))?.body[0]).toBe(1);
    expect((await store.get(key))?.meta.expiresAt).toBe(2);
    await store.put(key, entry(2, 9));
    const got = await store.get(key);
    expect(got?.body[0]).toBe(2);
    expect(got?.meta).toMatchObject({ etag: '"e2"', expiresAt: 9 });
  });

  it('misses after delete, deletePrefix and eviction of a key read before', async () => {
    const store = await openStore(2500);
    const [a, b] = [`${hex64()}/source`, hex64()];
    await store.put(a, entry(1));
    await store.put(`${b}/source`, entry(2));
    expect(await store.get(a)).toBeDefined();
    expect(await store.get(`${b}/source`)).toBeDefined();
    await store.delete(a);
    expect(await store.get(a)).toBeUndefined();
    await store.deletePrefix(`${b}/`);
    expect(await store.get(`${b}/source`)).toBeUndefined();
    const [c, d, e] = [`${hex64()}/source`, `${hex64()}/source`, `${hex64()}/source`];
    await store.put(c, entry(3));
    expect(await store.get(c)).toBeDefined();
    await store.put(d, entry(4));
    await store.put(e, entry(5)); // 3 × ~1.2 KB > 2500: c, the least recently used, goes
    expect(await store.get(c)).toBeUndefined();
  });

  it('answers concurrent reads of one key while it is replaced, each with a whole entry', async () => {
    const store = await openStore();
    const key = `${hex64()}/source`;
    await store.put(key, entry(1));
    await store.get(key);
    const reads = Array.from({ length: 20 }, () => store.get(key));
    await store.put(key, entry(2));
    for (const got of await Promise.all(reads)) expect([1, 2]).toContain(got?.body[0]);
    expect((await store.get(key))?.body.every((byte) => byte === 2)).toBe(true);
    await store.close?.();
  });
});
