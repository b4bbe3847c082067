/**
 * Purge on a shared bucket (issue #15 item 2), against a real S3 protocol server (s3rver, SigV4 verified):
 * - objects that are not imgrelay keys, under the prefix or beside it (console "folder" markers, other data), are
 *   left alone and counted by every kind of purge, which never fails because of them;
 * - `all` with an empty prefix removes only imgrelay's keys;
 * - entries written at the bucket root by older versions are still read and purged under the default prefix;
 * - a host purge among 10,000 sources reads and deletes only that host's objects, proven by the S3 requests the
 *   store sent (each one's Key/Prefix recorded by a middleware on the real client), not by timing.
 */
import { ListObjectsV2Command, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type PurgeableStore, purgeStore } from '../src/admin/local-purge.js';
import type { Selectors } from '../src/admin/selectors.js';
import { sha256Hex } from '../src/cache/keys.js';
import { type LegacyRootStore, withLegacyRoot } from '../src/cache/legacy-root.js';
import { reindexStore } from '../src/cache/reindex.js';
import { createS3Store } from '../src/cache/s3-store.js';
import { guardStore } from '../src/cache/store-guard.js';
import { type IndexedStore, withStoreIndex } from '../src/cache/store-index.js';
import type { Store, StoredEntry } from '../src/cache/types.js';
import { surrogateKeys } from '../src/images.js';
import { silentLogger } from '../src/logger.js';
import { adminFetch, eventually, fetchImage, purge, solidPng, TOKEN_A } from './helpers/admin.js';
import { bootImgrelay, ZAKER } from './helpers/imgrelay.js';
import { startOrigin } from './helpers/origin.js';
import { S3_CREDENTIALS, s3StoreOptions, startS3, type TestS3 } from './helpers/s3.js';
import { reindexDoneKey } from '../src/cache/reindex.js';
import { runCli } from '../src/cli.js';
import { etagOf } from '../src/cache/keys.js';

interface SentRequest {
  command: string;
  /** The object key or listing prefix the request named (bucket prefix included). */
  target: string;
  /** DeleteObjects: every key it named. */
  keys: string[];
}

interface Stack {
  client: S3Client;
  raw: Store;
  indexed: IndexedStore;
  purgeable: PurgeableStore;
  sent: SentRequest[];
}

/** A fresh server (empty bucket) per test: each test lays out its own bucket. */
let s3: TestS3;
beforeEach(async () => { s3 = await startS3(); });
afterEach(() => s3.close());

/** The store as node-store.ts wires it (index, guard), on a client that records every request it sends. */
function stackOf(prefix: string, legacyRoot = false): Stack {
  const options = s3StoreOptions(s3, prefix);
  const client = options.client as S3Client;
  const sent: SentRequest[] = [];
  type Args = { input: { Key?: string; Prefix?: string; Delete?: { Objects?: Array<{ Key?: string }> } } };
  const record = (next: (args: Args) => Promise<unknown>, context: { commandName?: string }) => async (args: Args) => {
    const { input } = args;
    sent.push({ command: context.commandName ?? '?', target: input.Key ?? input.Prefix ?? '',
      keys: (input.Delete?.Objects ?? []).map((o) => o.Key ?? '') });
    return next(args);
  };
  const stackOfClient = client.middlewareStack as unknown as { add(m: unknown, o: { step: string; name: string }): void };
  stackOfClient.add(record, { step: 'initialize', name: 'testRecordRequests' });
  const current = createS3Store(options);
  const raw = legacyRoot ? withLegacyRoot(current, createS3Store({ ...options, prefix: '' })) : current;
  const indexed = withStoreIndex(raw);
  const guarded = guardStore(indexed, { timeoutMs: 20_000, logger: silentLogger });
  return { client, raw, indexed, purgeable: { guarded, raw }, sent };
}

const selectors = (s: Partial<Selectors>): Selectors =>
  ({ sources: [], hosts: [], prefixes: [], tags: [], all: false, ...s });

const VARIANT = 'w=20|webp|v2';
const A_SOURCE = 'http://a.test/probe.png';

async function entryOf(source: string): Promise<StoredEntry> {
  const body = new TextEncoder().encode(`bytes of ${source}`);
  return { body, meta: { contentType: 'image/png', etag: '"e"', storedAt: 1, expiresAt: 2, sourceUrl: source,
    size: body.byteLength, tags: await surrogateKeys(new URL(source)) } };
}

/** Stores the source and one variant of each URL, as the image service would. */
async function storeSources(store: Store, sources: string[], withVariant = true): Promise<void> {
  for (let i = 0; i < sources.length; i += 50) {
    await Promise.all(sources.slice(i, i + 50).map(async (source) => {
      const hash = await sha256Hex(source);
      const entry = await entryOf(source);
      await store.put(`${hash}/source`, entry);
      if (withVariant) await store.put(`${hash}/${await sha256Hex(VARIANT)}`, entry);
    }));
  }
}

async function putObject(client: S3Client, key: string): Promise<void> {
  await client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: key, Body: `not imgrelay's: ${key}` }));
}

async function bucketKeys(client: S3Client, prefix = ''): Promise<string[]> {
  const keys: string[] = [];
  let token: string | undefined;
  do {
    const page = await client.send(new ListObjectsV2Command({ Bucket: s3.bucket, Prefix: prefix, ContinuationToken: token }));
    for (const object of page.Contents ?? []) keys.push(object.Key as string);
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  return keys;
}

/** Source hashes that still have entries under `root`. */
async function storedSources(client: S3Client, root: string, sources: string[]): Promise<string[]> {
  const keys = new Set(await bucketKeys(client, root));
  const kept: string[] = [];
  for (const source of sources) if (keys.has(`${root}${await sha256Hex(source)}/source`)) kept.push(source);
  return kept;
}

describe('a bucket shared with other data', () => {
  const A = ['http://a.test/1.png', 'http://a.test/2021/2.png', 'http://a.test:8080/3.png'];
  const B = ['https://b.test/x/4.png', 'https://b.test/y/5.png'];
  const UNDER = ['scope1/folder/', 'scope1/0abc.txt', 'scope1/notes.txt', 'scope1/_index/host/a.test/readme.txt'];
  const BESIDE = ['folder/', '0data.bin', 'abc/def.txt', 'scope10/x', 'scopeless'];

  it('skips and counts foreign objects in every kind of purge, never fails on them, and leaves them all', async () => {
    const stack = stackOf('scope1');
    for (const key of [...UNDER, ...BESIDE]) await putObject(stack.client, key);
    const purges: Array<[Partial<Selectors>, string[]]> = [
      [{ hosts: ['a.test'] }, A],
      [{ hosts: ['a.test:8080'] }, [A[2]]],
      [{ prefixes: ['http://a.test/2021/'] }, [A[1]]],
      [{ tags: ['host-b.test'] }, B],
      [{ tags: [(await surrogateKeys(new URL(B[0])))[0]] }, [B[0]]],
      [{ sources: [A[0]] }, [A[0]]],
    ];
    for (const [selected, gone] of purges) {
      await storeSources(stack.indexed, [...A, ...B]);
      const result = await purgeStore(stack.purgeable, selectors(selected));
      expect(result.failures, JSON.stringify(selected)).toBe(0);
      expect(result.removed, JSON.stringify(selected)).toBe(gone.length * 2);
      expect(await storedSources(stack.client, 'scope1/', [...A, ...B])).toEqual([...A, ...B].filter((s) => !gone.includes(s)));
    }
    const all = await purgeStore(stack.purgeable, selectors({ all: true }));
    expect(all.failures).toBe(0);
    // Listed by the 16 hex prefixes and `_index/`: `folder/`, `0abc.txt` and the file under `_index/` were met.
    expect(all.skipped).toBe(3);
    expect((await bucketKeys(stack.client)).sort()).toEqual([...UNDER, ...BESIDE].sort());
    await stack.raw.close?.();
  });

  it('all with an empty prefix removes only imgrelay keys: other data at the root stays, the purge log too', async () => {
    const stack = stackOf('');
    const foreign = ['folder/', '0data.bin', 'abc/def.txt', 'deadbeef/source', `${'a'.repeat(64)}/notes.txt`, 'z'];
    for (const key of foreign) await putObject(stack.client, key);
    await storeSources(stack.indexed, [...A, ...B]);
    const log = await stack.purgeable.guarded.putChecked('_purge/000000000000001-abc-def', await entryOf(A[0]));
    expect(log).toBe(true);
    const result = await purgeStore(stack.purgeable, selectors({ all: true }));
    expect(result.removed).toBe((A.length + B.length) * 2);
    expect(result.failures).toBe(0);
    expect(result.skipped).toBe(5); // every foreign key but `z`, which no hex prefix lists
    expect((await bucketKeys(stack.client)).sort()).toEqual([...foreign, '_purge/000000000000001-abc-def'].sort());
    await stack.raw.close?.();
  });
});

describe('entries older versions wrote at the bucket root (default prefix imgrelay/)', () => {
  const A = ['http://a.test/1.png', 'http://a.test/2.png'];
  const B = ['http://b.test/3.png'];

  it('are read, found by a host purge once reindexed, and removed by purge all; other data at the root stays', async () => {
    const old = createS3Store(s3StoreOptions(s3, '')); // what versions before the default prefix wrote
    await storeSources(old, [...A, ...B]);
    const stack = stackOf('imgrelay/', true);
    await putObject(stack.client, 'folder/');
    await putObject(stack.client, 'b0rked.bin');
    const hash = await sha256Hex(A[0]);
    expect((await stack.purgeable.guarded.get(`${hash}/source`))?.meta.sourceUrl).toBe(A[0]);

    expect(await reindexStore(stack.raw, stack.indexed.mark)).toEqual({ sources: 3 });
    const byHost = await purgeStore(stack.purgeable, selectors({ hosts: ['a.test'] }));
    expect(byHost).toMatchObject({ removed: 4, failures: 0 });
    expect(await stack.purgeable.guarded.get(`${hash}/source`)).toBeUndefined();
    expect(await storedSources(stack.client, '', [...A, ...B])).toEqual(B);

    const all = await purgeStore(stack.purgeable, selectors({ all: true }));
    expect(all).toMatchObject({ removed: 2, failures: 0 });
    expect(all.skipped).toBeGreaterThanOrEqual(2); // `folder/` and `b0rked.bin` at the root, met and left
    expect((await bucketKeys(stack.client)).filter((key) => !key.startsWith('imgrelay/_index/')).sort())
      .toEqual(['b0rked.bin', 'folder/']);
    await Promise.all([old.close?.(), stack.raw.close?.()]);
  });
});

describe('the service on a shared bucket with entries of an older version at its root', () => {
  it('serves the old entries, indexes them at start-up, and purges by host and all answer 200 and leave other data', async () => {
    // The service's S3 client takes credentials from the SDK's chain (here the environment) and is not patched.
    process.env.AWS_ACCESS_KEY_ID = S3_CREDENTIALS.accessKeyId;
    process.env.AWS_SECRET_ACCESS_KEY = S3_CREDENTIALS.secretAccessKey;
    const shared = await startS3({ allowMismatchedSignatures: true });
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
      expect(await eventually(async () => (await bucketKeys(client, done)).length === 1, 20_000)).toBe(true);
      const served = await fetchImage(`${relay.url}/?${old}`);
      expect([served.status, served.cache]).toEqual([200, 'HIT-STORE']); // the origin has no old.png: read at the root
      for (const source of [fresh, kept]) expect((await fetchImage(`${relay.url}/?${source}`)).status).toBe(200);
      await relay.store?.writes.drain(10_000);

      const byHost = await purge(relay, { hosts: [ZAKER] });
      expect(byHost.store).toBe(2); // a.png under imgrelay/, old.png at the root
      expect((await fetchImage(`${relay.url}/?${old}`)).status).toBe(404);
      expect(await storedSources(client, 'imgrelay/', [fresh, kept, old])).toEqual([kept]);

      const response = await adminFetch(relay, '/purge', { body: { all: true } });
      const all = await response.json() as { store: number; storeSkipped?: number };
      expect(response.status).toBe(200);
      expect(all.store).toBe(1);
      expect(all.storeSkipped).toBe(4); // every foreign object a hex start lists, under the prefix and at the root
      const left = await bucketKeys(client);
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
    process.env.AWS_ACCESS_KEY_ID = S3_CREDENTIALS.accessKeyId;
    process.env.AWS_SECRET_ACCESS_KEY = S3_CREDENTIALS.secretAccessKey;
    const shared = await startS3({ allowMismatchedSignatures: true });
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
      const markers = await bucketKeys(client, 'imgrelay/_index/host/a.test/');
      expect(markers.map((key) => key.slice(-64)).sort())
        .toEqual([await sha256Hex('http://a.test/1.png'), await sha256Hex('http://a.test/3.png')].sort());
    } finally {
      await shared.close();
    }
  });
});

describe('10,000 stored sources across 100 hosts', () => {
  const HOSTS = 100;
  const PER_HOST = 100;
  const sourcesOf = (host: number) =>
    Array.from({ length: PER_HOST }, (_, i) => `https://h${host}.test/images/${i}.jpg`);

  it('purging one host sends requests only for that host\'s markers and entries, a few per source', async () => {
    const stack = stackOf('imgrelay/');
    const started = Date.now();
    const all = Array.from({ length: HOSTS }, (_, host) => sourcesOf(host)).flat();
    await storeSources(stack.indexed, all, false);
    console.info(`stored ${all.length} sources (entry + host marker each) in ${Date.now() - started} ms`);
    const target = sourcesOf(42);
    const ownPrefixes = [`imgrelay/_index/host/h42.test/`,
      ...await Promise.all(target.map(async (source) => `imgrelay/${await sha256Hex(source)}/`))];
    const own = (key: string) => ownPrefixes.some((prefix) => key.startsWith(prefix));

    stack.sent.length = 0;
    const result = await purgeStore(stack.purgeable, selectors({ hosts: ['h42.test'] }));
    const sent = [...stack.sent];
    expect(result).toMatchObject({ removed: PER_HOST, failures: 0, skipped: 0 });
    const count = (command: string) => sent.filter((r) => r.command === command).length;
    const reads = count('GetObjectCommand') + count('HeadObjectCommand') + count('ListObjectsV2Command');
    console.info(`host purge among ${all.length} sources: ${sent.length} S3 requests, ${reads} reads `
      + `(${count('ListObjectsV2Command')} LIST, ${count('GetObjectCommand')} GET), for ${PER_HOST} sources`);
    // Every key or prefix a request named (DeleteObjects names keys only) is one of that host's.
    expect(sent.filter((r) => (r.keys.length > 0 ? !r.keys.every(own) : !own(r.target)))).toEqual([]);
    // One listing of the host's markers, then per source: list + delete of its entries, read + delete of its marker.
    expect(reads).toBeLessThanOrEqual(2 * PER_HOST + 1);
    expect(sent.length).toBeLessThanOrEqual(4 * PER_HOST + 1);

    const left = await bucketKeys(stack.client, 'imgrelay/');
    expect(left.filter((key) => !key.startsWith('imgrelay/_index/')).length).toBe(all.length - PER_HOST);
    expect(left.filter((key) => key.startsWith('imgrelay/_index/host/h42.test/'))).toEqual([]);
    await stack.raw.close?.();
  }, 600_000); // 20,000 PUTs to an in-process server on a shared 2-core machine: minutes, not seconds
});

describe('the legacy root probe', () => {
  it('switches root reads off when the root holds no entry, and keeps them while it does', async () => {
    const stack = stackOf('imgrelay/', true);
    await putObject(stack.client, '0data.bin'); // other data at the root is not an entry
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
