/**
 * The purge index on a real directory store: marker keys for each kind of host and tag, markers written with
 * their entries (once per source, again with every source entry), kept out of the fs store's LRU bound and across a
 * restart, an entry taken back when its marker cannot be written, and the index answering hosts, ports, prefixes
 * and tags without reading anything else.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../logger.js';
import { isIndexKey } from './entry-codec.js';
import { createFsStore, type FsStore } from './fs-store.js';
import { findIndexed, splitHost } from './index-lookup.js';
import { sha256Hex } from './keys.js';
import { reindexOnce } from './reindex.js';
import { markerKeys, tagLookupPrefix, withStoreIndex } from './store-index.js';
import type { Store, StoredEntry } from './types.js';

const dirs: string[] = [];
const stores: FsStore[] = [];
async function fsStore(maxBytes = 64 * 1024 * 1024, dir?: string): Promise<FsStore> {
  const where = dir ?? await mkdtemp(join(tmpdir(), 'imgrelay-index-'));
  if (!dir) dirs.push(where);
  const store = createFsStore({ dir: where, maxBytes, logger: silentLogger });
  stores.push(store);
  await store.ready;
  return store;
}
afterEach(async () => {
  await Promise.all(stores.splice(0).map((store) => store.close?.()));
  await Promise.all(dirs.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
});

function entryOf(sourceUrl: string, bytes = 16, tags: string[] = []): StoredEntry {
  return { body: new Uint8Array(bytes).fill(7), meta: { contentType: 'image/png', etag: '"e"', storedAt: 1,
    expiresAt: 2, sourceUrl, size: bytes, tags } };
}

async function keysOf(store: Store, prefix = ''): Promise<string[]> {
  const keys: string[] = [];
  for await (const key of store.list(prefix)) keys.push(key);
  return keys;
}

/** Counts the calls that reach the real store underneath. */
function counting(store: Store): { store: Store; calls: Array<[string, string]> } {
  const calls: Array<[string, string]> = [];
  const seen = <T>(op: string, key: string, value: T) => (calls.push([op, key]), value);
  return {
    calls,
    store: {
      kind: store.kind,
      get: (key, s) => seen('get', key, store.get(key, s)),
      head: (key, s) => seen('head', key, store.head!(key, s)),
      put: (key, e, s) => seen('put', key, store.put(key, e, s)),
      delete: (key, s) => seen('delete', key, store.delete(key, s)),
      deletePrefix: (prefix, s) => seen('deletePrefix', prefix, store.deletePrefix(prefix, s)),
      list: (prefix, s) => seen('list', prefix, store.list(prefix, s)),
    },
  };
}

describe('marker keys', () => {
  it('names the host and port, hashes what is not a plain name, and derives src-/host- tags', async () => {
    const hash = await sha256Hex('x');
    expect(await markerKeys(hash, { sourceUrl: 'http://a.test/x.png', tags: ['src-0123', 'host-a.test'] }))
      .toEqual([`_index/host/a.test/_/${hash}`, `_index/tag/src-0123/${hash}`]);
    expect(await markerKeys(hash, { sourceUrl: 'https://a.test:8443/x', tags: [`src-${hash.slice(0, 24)}`] }))
      .toEqual([`_index/host/a.test/8443/${hash}`]);
    const v6 = await markerKeys(hash, { sourceUrl: 'http://[2001:db8::1]/x', tags: ['campaign:7', 'campaign-7'] });
    expect(v6).toEqual([`_index/host/_${await sha256Hex('[2001:db8::1]')}/_/${hash}`,
      `_index/tag/_${await sha256Hex('campaign:7')}/${hash}`, `_index/tag/campaign-7/${hash}`]);
    expect(v6.every(isIndexKey)).toBe(true);
    expect(await markerKeys(hash, { sourceUrl: 'imgrelay:purge-log', tags: [] })).toEqual([]);
  });

  it('looks tags up where they live, and splits hosts from ports', async () => {
    expect(await tagLookupPrefix(`src-${'ab'.repeat(12)}`)).toEqual({ entries: 'ab'.repeat(12) });
    expect(await tagLookupPrefix('host-a.test')).toEqual({ markers: '_index/host/a.test/' });
    expect(await tagLookupPrefix('campaign-7')).toEqual({ markers: '_index/tag/campaign-7/' });
    expect(splitHost('a.test:8080')).toEqual({ hostname: 'a.test', port: '8080' });
    expect(splitHost('[::1]:80')).toEqual({ hostname: '[::1]', port: '80' });
    expect(splitHost('a.test')).toEqual({ hostname: 'a.test', port: undefined });
  });
});

describe('withStoreIndex on the directory store', () => {
  it('writes a marker with every source entry, not again for its variants', async () => {
    const { store, calls } = counting(await fsStore());
    const indexed = withStoreIndex(store);
    const hash = await sha256Hex('http://a.test/1.png');
    await indexed.put(`${hash}/source`, entryOf('http://a.test/1.png'));
    await indexed.put(`${hash}/${'1'.repeat(64)}`, entryOf('http://a.test/1.png'));
    await indexed.put(`${hash}/${'2'.repeat(64)}`, entryOf('http://a.test/1.png'));
    await indexed.put(`${hash}/source`, entryOf('http://a.test/1.png'));
    const markerPuts = calls.filter(([op, key]) => op === 'put' && key.startsWith('_index/'));
    expect(markerPuts.length).toBe(2);
    expect(await keysOf(store, '_index/')).toEqual([`_index/host/a.test/_/${hash}`]);
  });

  it('keeps markers out of the size bound: evicting entries never evicts the marker of one still cached', async () => {
    const raw = await fsStore(8 * 1024);
    const indexed = withStoreIndex(raw);
    const kept = await sha256Hex('http://a.test/kept.png');
    await indexed.put(`${kept}/source`, entryOf('http://a.test/kept.png', 1024));
    for (let i = 0; i < 20; i++) {
      await raw.get(`${kept}/source`); // the kept entry stays the most recently used
      const source = `http://b.test/${i}.png`;
      await indexed.put(`${await sha256Hex(source)}/source`, entryOf(source, 1024));
    }
    expect(raw.usage().bytes).toBeLessThanOrEqual(8 * 1024);
    expect(await raw.get(`${kept}/source`)).toBeDefined();
    expect(await keysOf(raw, '_index/host/a.test/')).toEqual([`_index/host/a.test/_/${kept}`]);
    const reopened = await fsStore(8 * 1024, (raw as unknown as { options: { dir: string } }).options.dir);
    expect(await keysOf(reopened, '_index/host/a.test/')).toEqual([`_index/host/a.test/_/${kept}`]);
  });

  it('takes the entry back when its marker cannot be written, and says the write failed', async () => {
    const raw = await fsStore();
    // Fault injection (no real store fails on demand): marker writes fail, entry writes reach the directory store.
    const failing: Store = { ...counting(raw).store,
      put: (key, e, s) => (key.startsWith('_index/') ? Promise.reject(new Error('disk full')) : raw.put(key, e, s)) };
    const hash = await sha256Hex('http://a.test/1.png');
    await expect(withStoreIndex(failing).put(`${hash}/source`, entryOf('http://a.test/1.png'))).rejects.toThrow('disk full');
    expect(await raw.get(`${hash}/source`)).toBeUndefined();
  });

  it('answers hosts, ports, prefixes and tags from the markers alone', async () => {
    const { store, calls } = counting(await fsStore());
    const indexed = withStoreIndex(store);
    const sources = ['http://a.test/2021/1.png', 'http://a.test/2022/2.png', 'http://a.test:8080/3.png',
      'https://b.test/4.png'];
    for (const source of sources) await indexed.put(`${await sha256Hex(source)}/source`, entryOf(source, 16, ['c-9']));
    const dirOf = async (source: string) => `${await sha256Hex(source)}/`;
    calls.length = 0;
    const answer = await findIndexed(store, { hosts: ['a.test:8080'], prefixes: ['http://a.test/2021/'], tags: [] });
    expect([...answer.dirs].sort()).toEqual([await dirOf(sources[0]), await dirOf(sources[2])].sort());
    // Two marker listings, then one read per marker of a.test's default port (two of them): nothing of b.test.
    expect(calls.map(([op, key]) => `${op} ${key.replace(/(a\.test\/).*/, '$1')}`).sort()).toEqual([
      'head _index/host/a.test/', 'head _index/host/a.test/', 'list _index/host/a.test/', 'list _index/host/a.test/']);
    const byTag = await findIndexed(store, { hosts: [], prefixes: [], tags: ['c-9', 'host-b.test'] });
    expect(byTag.dirs.size).toBe(4);
  });

  it('indexes entries stored without markers once, and records that it did', async () => {
    const raw = await fsStore();
    const sources = ['http://a.test/1.png', 'http://b.test/2.png'];
    for (const source of sources) {
      const hash = await sha256Hex(source);
      await raw.put(`${hash}/source`, entryOf(source));
      await raw.put(`${hash}/${'3'.repeat(64)}`, entryOf(source));
    }
    const indexed = withStoreIndex(raw);
    expect(await reindexOnce(raw, indexed.mark)).toEqual({ sources: 2 });
    expect(await reindexOnce(raw, indexed.mark)).toBeUndefined();
    const answer = await findIndexed(raw, { hosts: ['b.test'], prefixes: [], tags: [] });
    expect([...answer.dirs]).toEqual([`${await sha256Hex(sources[1])}/`]);
  });
});
