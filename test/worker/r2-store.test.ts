/**
 * The R2 store on miniflare's local R2 binding (IMGRELAY_R2), in workerd: the Store contract, the S3 store's frame
 * format and key layout, and R2 as the edge's persistent tier behind (or without) the Cache API.
 */
import { env } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import { createR2Store } from '../../src/cache/r2-store.js';
import { decodeEntry } from '../../src/cache/entry-codec.js';
import type { StoredEntry } from '../../src/cache/types.js';
import { freshEdge, IMAGES, originHits, unique, viaEdge } from './helpers.js';

const hex = (seed: string) => seed.repeat(64).slice(0, 64);

function entry(bytes: number[], sourceUrl = 'https://a.example/ü.jpg'): StoredEntry {
  return {
    body: new Uint8Array(bytes),
    meta: { contentType: 'image/jpeg', etag: '"abc"', storedAt: 10, expiresAt: 20, sourceUrl, size: bytes.length,
      tags: ['src-a', 'host-a.example'], validators: { etag: '"up"' } },
  };
}

describe('R2 store', () => {
  it('round-trips entries in the S3 store\'s frame under <prefix><key>, and lists and purges by prefix', async () => {
    const prefix = unique('r2');
    const store = createR2Store(env.IMGRELAY_R2, { prefix });
    const source = hex('a');
    const keys = [`${source}/source`, `${source}/${hex('b')}`, `${hex('c')}/source`];
    for (const [i, key] of keys.entries()) await store.put(key, entry([0xff, 0xd8, i]));

    const read = await store.get(keys[1]);
    expect(read?.meta).toEqual(entry([0xff, 0xd8, 1]).meta);
    expect([...read!.body]).toEqual([0xff, 0xd8, 1]);
    expect(await store.head!(keys[0])).toMatchObject({ sourceUrl: 'https://a.example/ü.jpg', size: 3 });
    const raw = await env.IMGRELAY_R2.get(`${prefix}/${keys[2]}`);
    const frame = new Uint8Array(await raw!.arrayBuffer());
    expect(new TextDecoder().decode(frame.subarray(0, 4))).toBe('IRE1');
    expect(decodeEntry(frame)?.meta.tags).toEqual(['src-a', 'host-a.example']);

    const listed: string[] = [];
    for await (const key of store.list(source)) listed.push(key);
    expect(listed.sort()).toEqual(keys.slice(0, 2).sort());
    expect(await store.deletePrefix(`${source}/`)).toBe(2);
    expect(await store.get(keys[0])).toBeUndefined();
    expect(await store.delete(keys[2])).toBe(true);
    expect(await store.delete(keys[2])).toBe(false);
  });

  it('reads a long meta through a second ranged read', async () => {
    const store = createR2Store(env.IMGRELAY_R2, { prefix: unique('r2-head') });
    const long = `https://a.example/${'x'.repeat(6000)}.jpg`;
    await store.put(`${hex('d')}/source`, entry([1, 2, 3], long));
    expect((await store.head!(`${hex('d')}/source`))?.sourceUrl).toBe(long);
    expect(await store.head!(`${hex('e')}/source`)).toBeUndefined();
  });

  it('is the persistent tier of an edge without the Cache API: a new isolate gets HIT-STORE', async () => {
    const source = `/cached.jpg?case=${unique('r2-tier')}`;
    const vars = { IMGRELAY_S3_PREFIX: unique('edge') };
    const first = freshEdge(vars, { cache: null });
    expect(first.storeKind).toBe('r2');
    expect((await viaEdge(first, `/?${IMAGES}${source}`)).headers.get('x-cache')).toBe('MISS');
    const second = await viaEdge(freshEdge(vars, { cache: null }), `/?${IMAGES}${source}`);
    expect(second.headers.get('x-cache')).toBe('HIT-STORE');
    expect(await originHits(source)).toBe(1);
  });

  it('sits behind the Cache API when both exist, and refills it from R2', async () => {
    const source = `/cached.jpg?case=${unique('layers')}`;
    const vars = { IMGRELAY_S3_PREFIX: unique('layers') };
    const edge = freshEdge(vars);
    expect(edge.storeKind).toBe('cache-api+r2');
    await viaEdge(freshEdge(vars, { cache: null }), `/?${IMAGES}${source}`); // only R2 has it now
    expect((await viaEdge(edge, `/?${IMAGES}${source}`)).headers.get('x-cache')).toBe('HIT-STORE');
    // The R2 hit was copied to the Cache API: an edge with no R2 finds it there.
    const cacheOnly = freshEdge({ ...vars, IMGRELAY_R2: undefined });
    expect(cacheOnly.storeKind).toBe('cache-api');
    expect((await viaEdge(cacheOnly, `/?${IMAGES}${source}`)).headers.get('x-cache')).toBe('HIT-STORE');
    expect(await originHits(source)).toBe(1);
  });

  it('lists and purges only imgrelay keys: foreign objects under the prefix are counted and stay', async () => {
    const prefix = unique('r2-foreign');
    const store = createR2Store(env.IMGRELAY_R2, { prefix });
    for (const key of ['folder/', '0abc.txt', `${hex('a')}/notes.txt`]) await env.IMGRELAY_R2.put(`${prefix}/${key}`, 'other');
    await store.put(`${hex('a')}/source`, entry([1]));
    const listed: string[] = [];
    for await (const key of store.list('')) listed.push(key);
    expect(listed).toEqual([`${hex('a')}/source`]);
    expect(await store.deletePrefix('0')).toBe(0);
    expect(await store.deletePrefix('a')).toBe(1);
    expect(store.foreignSkipped).toBe(5); // the three listed, then `0abc.txt` and `…/notes.txt` met again
    for (const key of ['folder/', '0abc.txt', `${hex('a')}/notes.txt`]) {
      expect(await env.IMGRELAY_R2.head(`${prefix}/${key}`)).not.toBeNull();
    }
  });

  it('writes the purge-index marker beside what the edge stores in R2, under the shared prefix', async () => {
    const source = `/cached.jpg?case=${unique('r2-index')}`;
    const prefix = unique('edge-index');
    await viaEdge(freshEdge({ IMGRELAY_S3_PREFIX: prefix }, { cache: null }), `/?${IMAGES}${source}`);
    const markers = await env.IMGRELAY_R2.list({ prefix: `${prefix}/_index/host/` });
    expect(markers.objects.length).toBe(1);
    expect(markers.objects[0].key).toMatch(new RegExp(`^${prefix}/_index/host/[^/]+/(_|\\d+)/[0-9a-f]{64}$`));
  });
});
