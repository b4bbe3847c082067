/**
 * Entries that versions before the default `imgrelay/` prefix wrote at the bucket root (README "Migration: the S3
 * prefix"), against a real S3 protocol server: still read, indexed (at start-up or by `imgrelay reindex`) so that
 * host purges find them, removed by purges, and no longer looked for once the root holds none. Other data at the
 * root is never touched.
 */
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { purgeStore } from '../src/admin/local-purge.js';
import { etagOf, sha256Hex } from '../src/cache/keys.js';
import type { LegacyRootStore } from '../src/cache/legacy-root.js';
import { reindexDoneKey, reindexStore } from '../src/cache/reindex.js';
import { createS3Store } from '../src/cache/s3-store.js';
import { runCli } from '../src/cli.js';
import { surrogateKeys } from '../src/images.js';
import { adminFetch, eventually, fetchImage, purge, solidPng, TOKEN_A } from './helpers/admin.js';
import { bootImgrelay, ZAKER } from './helpers/imgrelay.js';
import { startOrigin } from './helpers/origin.js';
import { s3StoreOptions, startS3, startS3ForService, type TestS3 } from './helpers/s3.js';
import { bucketKeys, entryOf, putObject, selectors, stackOf, storedSources, storeSources } from './helpers/s3-scope.js';

/** A fresh server (empty bucket) per test: each test lays out its own bucket. */
let s3: TestS3;
beforeEach(async () => { s3 = await startS3(); });
afterEach(() => s3.close());

const A_SOURCE = 'http://a.test/probe.png';

describe('entries older versions wrote at the bucket root (default prefix imgrelay/)', () => {
  const A = ['http://a.test/1.png', 'http://a.test/2.png'];
  const B = ['http://b.test/3.png'];

  it('are read, found by a host purge once reindexed, and removed by purge all; other data at the root stays', async () => {
    const old = createS3Store(s3StoreOptions(s3, '')); // what versions before the default prefix wrote
    await storeSources(old, [...A, ...B]);
    const stack = stackOf(s3, 'imgrelay/', true);
    await putObject(stack.client, s3.bucket, 'folder/');
    await putObject(stack.client, s3.bucket, 'b0rked.bin');
    const hash = await sha256Hex(A[0]);
    expect((await stack.purgeable.guarded.get(`${hash}/source`))?.meta.sourceUrl).toBe(A[0]);

    expect(await reindexStore(stack.raw, stack.indexed.mark)).toEqual({ sources: 3 });
    const byHost = await purgeStore(stack.purgeable, selectors({ hosts: ['a.test'] }));
    expect(byHost).toMatchObject({ removed: 4, failures: 0 });
    expect(await stack.purgeable.guarded.get(`${hash}/source`)).toBeUndefined();
    expect(await storedSources(stack.client, s3.bucket, '', [...A, ...B])).toEqual(B);

    const all = await purgeStore(stack.purgeable, selectors({ all: true }));
    expect(all).toMatchObject({ removed: 2, failures: 0 });
    expect(all.skipped).toBeGreaterThanOrEqual(2); // `folder/` and `b0rked.bin` at the root, met and left
    expect((await bucketKeys(stack.client, s3.bucket)).filter((key) => !key.startsWith('imgrelay/_index/')).sort())
      .toEqual(['b0rked.bin', 'folder/']);
    await Promise.all([old.close?.(), stack.raw.close?.()]);
  });
});

describe('the service on a shared bucket with entries of an older version at its root', () => {
  it('serves the old entries, indexes them at start-up, and purges by host and all answer 200 and leave other data', async () => {
    const shared = await startS3ForService();
    const origin = await startOrigin();
    const OTHER = 'img.example.org';
    const [fresh, kept, old] = [`http://${ZAKER}/a.png`, `http://${OTHER}/e.png`, `http://${ZAKER}/old.png`];
    origin.serve('/a.png', await solidPng('#c00'), 'image/png');
    origin.serve('/e.png', await solidPng('#0c0'), 'image/png');
    const oldStore = createS3Store(s3StoreOptions(shared, ''));
    const oldBytes = await solidPng('#00c');
    const meta = { contentType: 'image/png', etag: await etagOf(oldBytes), storedAt: Date.now(),
      expiresAt: Date.now() + 86_400_000, sourceUrl: old, size: oldBytes.byteLength,
      tags: await surrogateKeys(new URL(old)) };
    await oldStore.put(`${await sha256Hex(old)}/source`, { body: oldBytes, meta });
    const foreign = ['folder/', '0data.bin', 'imgrelay/folder/', 'imgrelay/0abc.txt'];
    const client = s3StoreOptions(shared).client as S3Client;
    for (const key of foreign) {
      await client.send(new PutObjectCommand({ Bucket: shared.bucket, Key: key, Body: 'other data' }));
    }
    const relay = await bootImgrelay({
      IMGRELAY_RESOLVE: `${ZAKER}:80:127.0.0.1:${origin.port},${OTHER}:80:127.0.0.1:${origin.port}`,
      IMGRELAY_ALLOW_PRIVATE_NETWORKS: '127.0.0.0/8', IMGRELAY_ADMIN_TOKENS: TOKEN_A, IMGRELAY_STORE: 's3',
      IMGRELAY_S3_BUCKET: shared.bucket, IMGRELAY_S3_ENDPOINT: shared.endpoint, IMGRELAY_S3_FORCE_PATH_STYLE: 'true',
    });
    try {
      const done = `imgrelay/${await reindexDoneKey()}`;
      expect(await eventually(async () => (await bucketKeys(client, shared.bucket, done)).length === 1, 20_000)).toBe(true);
      const served = await fetchImage(`${relay.url}/?${old}`);
      expect([served.status, served.cache]).toEqual([200, 'HIT-STORE']); // the origin has no old.png: read at the root
      for (const source of [fresh, kept]) expect((await fetchImage(`${relay.url}/?${source}`)).status).toBe(200);
      await relay.store?.writes.drain(10_000);

      const byHost = await purge(relay, { hosts: [ZAKER] });
      expect(byHost.store).toBe(2); // a.png under imgrelay/, old.png at the root
      expect((await fetchImage(`${relay.url}/?${old}`)).status).toBe(404);
      expect(await storedSources(client, shared.bucket, 'imgrelay/', [fresh, kept, old])).toEqual([kept]);

      const response = await adminFetch(relay, '/purge', { body: { all: true } });
      const all = await response.json() as { store: number; storeSkipped?: number };
      expect(response.status).toBe(200);
      expect(all.store).toBe(1);
      expect(all.storeSkipped).toBe(4); // every foreign object a hex start lists, under the prefix and at the root
      const left = await bucketKeys(client, shared.bucket);
      expect(left.filter((key) => !key.startsWith('imgrelay/_'))).toEqual(expect.arrayContaining(foreign));
      expect(left.filter((key) => !key.startsWith('imgrelay/_')).length).toBe(foreign.length);
    } finally {
      await relay.close();
      await Promise.all([oldStore.close?.(), origin.close()]);
      await shared.close();
    }
  }, 60_000);
});

describe('imgrelay reindex', () => {
  it('indexes what an older version stored, under the prefix and at the root, so a host purge finds it', async () => {
    const shared = await startS3ForService();
    try {
      const [under, root] = [createS3Store(s3StoreOptions(shared, 'imgrelay/')), createS3Store(s3StoreOptions(shared, ''))];
      await storeSources(under, ['http://a.test/1.png', 'http://b.test/2.png']); // no markers: written unindexed
      await storeSources(root, ['http://a.test/3.png']);
      await Promise.all([under.close?.(), root.close?.()]);
      let out = '';
      const code = await runCli(['reindex'], { IMGRELAY_STORE: 's3', IMGRELAY_S3_BUCKET: shared.bucket,
        IMGRELAY_S3_ENDPOINT: shared.endpoint, IMGRELAY_S3_FORCE_PATH_STYLE: 'true', IMGRELAY_LOG_LEVEL: 'silent' },
      { out: (text) => { out += text; }, err: (text) => { out += text; } });
      expect([code, out]).toEqual([0, 'indexed 3 source(s) in the s3 store\n']);
      const client = s3StoreOptions(shared).client as S3Client;
      const markers = await bucketKeys(client, shared.bucket, 'imgrelay/_index/host/a.test/');
      expect(markers.map((key) => key.slice(-64)).sort())
        .toEqual([await sha256Hex('http://a.test/1.png'), await sha256Hex('http://a.test/3.png')].sort());
    } finally {
      await shared.close();
    }
  });
});

describe('the legacy root probe', () => {
  it('switches root reads off when the root holds no entry, and keeps them while it does', async () => {
    const stack = stackOf(s3, 'imgrelay/', true);
    await putObject(stack.client, s3.bucket, '0data.bin'); // other data at the root is not an entry
    const probe = (stack.raw as LegacyRootStore).probe.bind(stack.raw);
    const hash = await sha256Hex(A_SOURCE);
    const old = createS3Store(s3StoreOptions(s3, ''));
    await old.put(`${hash}/source`, await entryOf(A_SOURCE));
    expect(await probe()).toBe(true);
    expect(await stack.raw.get(`${hash}/source`)).toBeDefined();
    await old.deletePrefix(`${hash}/`);
    expect(await probe()).toBe(false);
    await old.put(`${hash}/source`, await entryOf(A_SOURCE)); // too late: this process no longer reads the root
    stack.sent.length = 0;
    expect(await stack.raw.get(`${hash}/source`)).toBeUndefined();
    expect(stack.sent.map((r) => r.target)).toEqual([`imgrelay/${hash}/source`]);
    await Promise.all([old.close?.(), stack.raw.close?.()]);
  });
});
