/** The directory store's own promises: crash safety, the size bound with LRU eviction, restart survival. */
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../logger.js';
import { encodeEntry } from './entry-codec.js';
import { createFsStore, TEMP_PREFIX } from './fs-store.js';
import type { StoredEntry } from './types.js';

const hex64 = () => randomBytes(32).toString('hex');
const dirs: string[] = [];
const tempDir = async () => {
  const dir = await mkdtemp(join(tmpdir(), 'imgrelay-fs-store-'));
  dirs.push(dir);
  return dir;
};
afterEach(async () => {
  await Promise.all(dirs.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
});

function entryOf(bytes: number, fill = 1): StoredEntry {
  return {
    body: new Uint8Array(bytes).fill(fill),
    meta: { contentType: 'image/jpeg', etag: '"e"', storedAt: 1, expiresAt: 2, sourceUrl: 'https://a.example/x.jpg',
      size: bytes, tags: [] },
  };
}

/** Bytes of every regular file under `dir`, the way an operator's `du` would count them. */
async function bytesOnDisk(dir: string): Promise<number> {
  let total = 0;
  for (const name of await readdir(dir, { recursive: true })) {
    const info = await stat(join(dir, name));
    if (info.isFile()) total += info.size;
  }
  return total;
}

describe('fs store', () => {
  it('never serves a temp file left by a crash before the rename, and removes it at start-up', async () => {
    const dir = await tempDir();
    const key = `${hex64()}/source`;
    const [source] = key.split('/');
    // Exactly what a put leaves when the process dies between the temp write and the rename.
    await mkdir(join(dir, source), { recursive: true });
    const leftover = join(dir, source, `${TEMP_PREFIX}0123456789abcdef`);
    await writeFile(leftover, encodeEntry(entryOf(100)));

    const store = createFsStore({ dir, maxBytes: 1 << 20, logger: silentLogger });
    expect(await store.get(key)).toBeUndefined();
    await store.ready;
    expect(await readdir(join(dir, source))).toEqual([]);
    const listed: string[] = [];
    for await (const k of store.list('')) listed.push(k);
    expect(listed).toEqual([]);
    expect(store.usage()).toEqual({ bytes: 0, entries: 0 });
  });

  it('reads a torn or foreign file as a miss and drops it', async () => {
    const dir = await tempDir();
    const key = `${hex64()}/source`;
    const path = join(dir, ...key.split('/'));
    await mkdir(join(path, '..'), { recursive: true });
    const frame = encodeEntry(entryOf(1000));
    await writeFile(path, frame.subarray(0, frame.byteLength - 10));
    const store = createFsStore({ dir, maxBytes: 1 << 20, logger: silentLogger });
    expect(await store.get(key)).toBeUndefined();
    await expect(readFile(path)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('stays within maxBytes on disk and evicts the least recently used first', async () => {
    const dir = await tempDir();
    const frameBytes = encodeEntry(entryOf(10_000)).byteLength;
    const maxBytes = frameBytes * 8 + frameBytes / 2; // room for 8 entries
    const store = createFsStore({ dir, maxBytes, logger: silentLogger });
    await store.ready;
    const keys = Array.from({ length: 30 }, () => `${hex64()}/source`);
    const hot = keys[0];
    for (const [i, key] of keys.entries()) {
      await store.put(key, entryOf(10_000, i));
      expect(await store.get(hot)).toBeDefined(); // read after every write: always the most recently used
      expect(await bytesOnDisk(dir)).toBeLessThanOrEqual(maxBytes);
    }
    expect((await store.get(hot))?.body[0]).toBe(0);
    for (const key of keys.slice(-7)) expect(await store.get(key)).toBeDefined();
    for (const key of keys.slice(1, -7)) expect(await store.get(key)).toBeUndefined();
    expect(store.usage().entries).toBe(8);
  });

  it('does not keep an entry larger than the whole bound, and fails nothing', async () => {
    const dir = await tempDir();
    const store = createFsStore({ dir, maxBytes: 4096, logger: silentLogger });
    const small = `${hex64()}/source`;
    await store.put(small, entryOf(100));
    await store.put(`${hex64()}/source`, entryOf(10_000));
    expect(await store.get(small)).toBeDefined();
    expect(await bytesOnDisk(dir)).toBeLessThanOrEqual(4096);
  });

  it('serves after a restart what the first instance wrote, keeping the newest when the bound shrank', async () => {
    const dir = await tempDir();
    const first = createFsStore({ dir, maxBytes: 1 << 20, logger: silentLogger });
    const keys = Array.from({ length: 6 }, () => `${hex64()}/${hex64()}`);
    for (const [i, key] of keys.entries()) await first.put(key, entryOf(1000, i + 1));
    await first.close?.();
    // Distinct, ordered mtimes: the scan orders by mtime (write order), whatever the filesystem's resolution.
    const base = Date.now() / 1000 - 3600;
    for (const [i, key] of keys.entries()) await utimes(join(dir, ...key.split('/')), base + i, base + i);

    const frameBytes = encodeEntry(entryOf(1000)).byteLength;
    const second = createFsStore({ dir, maxBytes: frameBytes * 4, logger: silentLogger });
    await second.ready;
    expect(second.usage().entries).toBe(4);
    for (const [i, key] of keys.entries()) {
      const got = await second.get(key);
      if (i < 2) expect(got).toBeUndefined();
      else expect(got?.body[0]).toBe(i + 1);
    }
    expect(await bytesOnDisk(dir)).toBeLessThanOrEqual(frameBytes * 4);
  });

  it('answers get before its start-up scan ends', async () => {
    const dir = await tempDir();
    const key = `${hex64()}/source`;
    const first = createFsStore({ dir, maxBytes: 1 << 20, logger: silentLogger });
    await first.put(key, entryOf(10, 5));
    const second = createFsStore({ dir, maxBytes: 1 << 20, logger: silentLogger });
    expect((await second.get(key))?.body[0]).toBe(5);
    await second.ready;
    expect(second.usage().entries).toBe(1);
  });

  it('a purge-index marker read during the start-up scan stays out of the LRU bound: filling the store never evicts it', async () => {
    const dir = await tempDir();
    const marker = `_index/host/a.example/_/${hex64()}`;
    const first = createFsStore({ dir, maxBytes: 1 << 20, logger: silentLogger });
    await first.put(marker, entryOf(0));
    await first.close?.();
    const frameBytes = encodeEntry(entryOf(1000)).byteLength;
    const second = createFsStore({ dir, maxBytes: frameBytes * 2, logger: silentLogger });
    expect(await second.get(marker)).toBeDefined(); // read while the scan runs (a purge looking up its host)
    await second.ready;
    for (let i = 0; i < 4; i++) await second.put(`${hex64()}/source`, entryOf(1000, i));
    expect(second.usage().entries).toBe(2);
    expect(await second.get(marker)).toBeDefined();
  });

  it('keeps writing into a source folder that a purge or an operator removed after it was first made', async () => {
    const dir = await tempDir();
    const store = createFsStore({ dir, maxBytes: 1 << 20, logger: silentLogger });
    await store.ready;
    const source = hex64();
    await store.put(`${source}/source`, entryOf(10, 1));
    await store.deletePrefix(`${source}/`);
    await store.put(`${source}/${hex64()}`, entryOf(10, 2));
    await rm(join(dir, source), { recursive: true });
    await store.put(`${source}/source`, entryOf(10, 3));
    expect((await store.get(`${source}/source`))?.body[0]).toBe(3);
    expect((await readdir(join(dir, source))).filter((name) => name.startsWith(TEMP_PREFIX))).toEqual([]);
  });

  it('answers a key it never wrote as a miss from its index, and sees files of another process after a restart', async () => {
    const dir = await tempDir();
    const key = `${hex64()}/source`;
    const running = createFsStore({ dir, maxBytes: 1 << 20, logger: silentLogger });
    await running.ready;
    const other = createFsStore({ dir, maxBytes: 1 << 20, logger: silentLogger });
    await other.put(key, entryOf(10, 7));
    expect(await running.get(key)).toBeUndefined();
    const restarted = createFsStore({ dir, maxBytes: 1 << 20, logger: silentLogger });
    await restarted.ready;
    expect((await restarted.get(key))?.body[0]).toBe(7);
  });
});

describe('fs store: a purge is not undone by work in flight', () => {
  it('a put that was being written while a purge deleted its source directory does not land', async () => {
    const dir = await tempDir();
    const store = createFsStore({ dir, maxBytes: 1 << 20, logger: silentLogger });
    await store.ready;
    const source = hex64();
    const [purged, later] = [`${source}/source`, `${hex64()}/source`];
    const writing = store.put(purged, entryOf(50_000, 7)); // not awaited: the purge runs while it is written
    const removed = store.deletePrefix(`${source}/`);
    await Promise.all([writing, removed]);
    expect(await store.get(purged)).toBeUndefined();
    expect(await readdir(join(dir, source)).catch(() => [])).toEqual([]); // no file left behind either
    expect(store.usage()).toEqual({ bytes: 0, entries: 0 }); // nor in the index (the size bound counts it)
    await store.put(later, entryOf(100, 8)); // a put that began after the purge lands as usual
    await store.put(purged, entryOf(100, 9));
    expect((await store.get(purged))?.body[0]).toBe(9);
    await store.close?.();
  });

  it('a read in progress when its key is deleted does not put the key back in the index', async () => {
    const dir = await tempDir();
    const store = createFsStore({ dir, maxBytes: 1 << 20, logger: silentLogger });
    await store.ready;
    const key = `${hex64()}/source`;
    await store.put(key, entryOf(200_000));
    const reading = store.get(key); // the read is under way
    await store.delete(key);
    await reading;
    expect(store.usage()).toEqual({ bytes: 0, entries: 0 });
    expect(await store.get(key)).toBeUndefined();
    await store.close?.();
  });
});
