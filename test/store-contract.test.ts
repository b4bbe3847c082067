/**
 * One contract, every persistent store: the directory store on a temp dir and the S3 store against a real S3
 * protocol server (s3rver on loopback, SigV4 verified). Each test uses its own random source hashes, so tests do
 * not depend on each other or on their order.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createFsStore } from '../src/cache/fs-store.js';
import { createS3Store } from '../src/cache/s3-store.js';
import type { EntryMeta, Store, StoredEntry } from '../src/cache/types.js';
import { RelayError } from '../src/errors.js';
import { silentLogger } from '../src/logger.js';
import { s3StoreOptions, startS3 } from './helpers/s3.js';

interface Subject {
  store: Store;
  teardown(): Promise<void>;
}

const hex64 = () => randomBytes(32).toString('hex');

function entryOf(body: Uint8Array, overrides: Partial<EntryMeta> = {}): StoredEntry {
  return {
    body,
    meta: {
      contentType: 'image/webp', etag: `"${randomBytes(16).toString('hex')}"`, storedAt: 1_700_000_000_123,
      expiresAt: 1_700_086_400_456, sourceUrl: 'https://img.example.com/a/b.jpg?x=1&y=%2F', size: body.byteLength,
      tags: ['img.example.com', 'article-42'], ...overrides,
    },
  };
}

/** Keys in the order the store yields them. */
async function collect(keys: AsyncIterable<string>): Promise<string[]> {
  const out: string[] = [];
  for await (const key of keys) out.push(key);
  return out;
}

/** Puts with bounded parallelism (a thousand sequential PUTs would be slow on a loaded machine). */
async function putAll(store: Store, keys: string[], entry: StoredEntry): Promise<void> {
  for (let i = 0; i < keys.length; i += 25) {
    await Promise.all(keys.slice(i, i + 25).map((key) => store.put(key, entry)));
  }
}

const subjects: Array<[string, () => Promise<Subject>]> = [
  ['fs', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'imgrelay-fs-contract-'));
    const store = createFsStore({ dir, maxBytes: 256 * 1024 * 1024, logger: silentLogger });
    return { store, teardown: async () => { await store.close?.(); await rm(dir, { recursive: true, force: true }); } };
  }],
  ['s3', async () => {
    const s3 = await startS3();
    const store = createS3Store(s3StoreOptions(s3, 'contract'));
    return { store, teardown: async () => { await store.close?.(); await s3.close(); } };
  }],
];

describe.each(subjects)('%s store contract', (_kind, open) => {
  let subject: Subject;
  let store: Store;
  beforeAll(async () => {
    subject = await open();
    store = subject.store;
  });
  afterAll(async () => subject?.teardown());

  it('returns exactly the bytes and every meta field it was given', async () => {
    const key = `${hex64()}/${hex64()}`;
    const body = new Uint8Array(randomBytes(70_000));
    const entry = entryOf(body, {
      validators: { etag: 'W/"upstream-1"', lastModified: 'Tue, 01 Jul 2025 10:00:00 GMT' },
      varyAccept: true, sourceEtag: '"source-etag"',
      // Longer than S3's 2 KB of user metadata: meta must not depend on it.
      sourceUrl: `https://zkres2.myzaker.com/202107/${'p'.repeat(6000)}_1024.jpg?ü=1`,
      tags: Array.from({ length: 200 }, (_, i) => `tag-${i}-${'x'.repeat(20)}`),
    });
    await store.put(key, entry);
    const got = await store.get(key);
    expect(got?.meta).toEqual(entry.meta);
    expect(Buffer.from(got!.body).equals(Buffer.from(body))).toBe(true);
    expect(await store.head?.(key)).toEqual(entry.meta);
  });

  it('keeps an empty body and optional fields left out', async () => {
    const key = `${hex64()}/source`;
    const entry = entryOf(new Uint8Array(0), { tags: [] });
    await store.put(key, entry);
    const got = await store.get(key);
    expect(got?.meta).toEqual(entry.meta);
    expect(got?.body.byteLength).toBe(0);
  });

  it('answers undefined / false for a key never written', async () => {
    const key = `${hex64()}/source`;
    expect(await store.get(key)).toBeUndefined();
    expect(await store.head?.(key)).toBeUndefined();
    expect(await store.delete(key)).toBe(false);
  });

  it('serves the newest entry after an overwrite', async () => {
    const key = `${hex64()}/source`;
    await store.put(key, entryOf(new Uint8Array([1, 1, 1]), { contentType: 'image/jpeg' }));
    await store.put(key, entryOf(new Uint8Array([2, 2]), { contentType: 'image/png' }));
    const got = await store.get(key);
    expect(got?.meta.contentType).toBe('image/png');
    expect([...got!.body]).toEqual([2, 2]);
  });

  it('deletes one key', async () => {
    const key = `${hex64()}/source`;
    await store.put(key, entryOf(new Uint8Array([9])));
    expect(await store.delete(key)).toBe(true);
    expect(await store.get(key)).toBeUndefined();
    expect(await store.delete(key)).toBe(false);
  });

  it('deletePrefix removes every variant of one source and nothing else', async () => {
    const [purged, kept] = [hex64(), hex64()];
    const purgedKeys = [`${purged}/source`, `${purged}/${hex64()}`, `${purged}/${hex64()}`];
    const keptKeys = [`${kept}/source`, `${kept}/${hex64()}`];
    await putAll(store, [...purgedKeys, ...keptKeys], entryOf(new Uint8Array([7, 7])));
    expect(await store.deletePrefix(`${purged}/`)).toBe(3);
    for (const key of purgedKeys) expect(await store.get(key)).toBeUndefined();
    for (const key of keptKeys) expect((await store.get(key))?.body).toEqual(new Uint8Array([7, 7]));
    expect(await collect(store.list(`${purged}/`))).toEqual([]);
    expect(await store.deletePrefix(`${purged}/`)).toBe(0);
  });

  it('lists keys by prefix in lexicographic order, including purge-log keys', async () => {
    const source = hex64();
    const keys = [`${source}/source`, `${source}/${hex64()}`, `${source}/${hex64()}`].sort();
    const logKey = `_purge/${Date.now()}-${hex64().slice(0, 8)}`;
    await store.put(keys[2], entryOf(new Uint8Array([3]))); // written, and so used, in another order than listed
    await putAll(store, [keys[1], keys[0], logKey], entryOf(new Uint8Array([3])));
    expect(await collect(store.list(`${source}/`))).toEqual(keys);
    expect(await collect(store.list('_purge/'))).toContain(logKey);
    const all = await collect(store.list(''));
    expect(all).toEqual(expect.arrayContaining([...keys, logKey]));
  });

  it('lists and purges more than 1000 keys under one prefix (S3 pages of 1000)', async () => {
    const source = hex64();
    const keys = Array.from({ length: 1005 }, () => `${source}/${hex64()}`).sort();
    await putAll(store, keys, entryOf(new Uint8Array([1])));
    expect(await collect(store.list(`${source}/`))).toEqual(keys);
    expect(await store.deletePrefix(source)).toBe(1005);
    expect(await collect(store.list(`${source}/`))).toEqual([]);
  }, 120_000);

  it('refuses keys that are not cache keys, so no key can reach outside the store', async () => {
    const hash = hex64();
    const bad = ['../../etc/passwd', `${hash}/../../x`, `${hash}/.tmp-abc`, `${hash.slice(1)}/source`,
      `${hash.toUpperCase()}/source`, `${hash}/source/extra`, '_purge/../x', '_purge/.hidden', '', `/${hash}/source`];
    for (const key of bad) {
      await expect(store.put(key, entryOf(new Uint8Array([1])))).rejects.toBeInstanceOf(RelayError);
      await expect(store.get(key)).rejects.toMatchObject({ code: 'E_BAD_REQUEST' });
      await expect(store.delete(key)).rejects.toMatchObject({ code: 'E_BAD_REQUEST' });
    }
  });
});

describe('fs store layout', () => {
  it('keeps everything under its directory, one file per entry in the source folder', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'imgrelay-fs-layout-'));
    const store = createFsStore({ dir, maxBytes: 1024 * 1024, logger: silentLogger });
    const source = hex64();
    const variant = hex64();
    await store.put(`${source}/source`, entryOf(new Uint8Array([1])));
    await store.put(`${source}/${variant}`, entryOf(new Uint8Array([2])));
    expect((await readdir(join(dir, source))).sort()).toEqual([variant, 'source'].sort());
    await store.close?.();
    await rm(dir, { recursive: true, force: true });
  });
});
