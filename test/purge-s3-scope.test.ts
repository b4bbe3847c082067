/**
 * Purge on a shared bucket (issue #15 item 2), against a real S3 protocol server (s3rver, SigV4 verified):
 * - objects that are not imgrelay keys, under the prefix or beside it (console "folder" markers, other data), are
 *   left alone and counted by every kind of purge, which never fails because of them;
 * - `all` with an empty prefix removes only imgrelay's keys;
 * - a host purge among 10,000 sources reads and deletes only that host's objects, proven by the S3 requests the
 *   store sent (each one's Key/Prefix recorded by a middleware on the real client), not by timing.
 * Entries of older versions at the bucket root: test/purge-s3-legacy.test.ts.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { purgeStore } from '../src/admin/local-purge.js';
import type { Selectors } from '../src/admin/selectors.js';
import { sha256Hex } from '../src/cache/keys.js';
import { surrogateKeys } from '../src/images.js';
import { startS3, type TestS3 } from './helpers/s3.js';
import { bucketKeys, entryOf, putObject, selectors, stackOf, storedSources, storeSources } from './helpers/s3-scope.js';

/** A fresh server (empty bucket) per test: each test lays out its own bucket. */
let s3: TestS3;
beforeEach(async () => { s3 = await startS3(); });
afterEach(() => s3.close());

describe('a bucket shared with other data', () => {
  const A = ['http://a.test/1.png', 'http://a.test/2021/2.png', 'http://a.test:8080/3.png'];
  const B = ['https://b.test/x/4.png', 'https://b.test/y/5.png'];
  const UNDER = ['scope1/folder/', 'scope1/0abc.txt', 'scope1/notes.txt', 'scope1/_index/host/a.test/readme.txt'];
  const BESIDE = ['folder/', '0data.bin', 'abc/def.txt', 'scope10/x', 'scopeless'];

  it('skips and counts foreign objects in every kind of purge, never fails on them, and leaves them all', async () => {
    const stack = stackOf(s3, 'scope1');
    for (const key of [...UNDER, ...BESIDE]) await putObject(stack.client, s3.bucket, key);
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
      expect(await storedSources(stack.client, s3.bucket, 'scope1/', [...A, ...B])).toEqual([...A, ...B].filter((s) => !gone.includes(s)));
    }
    const all = await purgeStore(stack.purgeable, selectors({ all: true }));
    expect(all.failures).toBe(0);
    // Listed by the 16 hex prefixes and `_index/`: `folder/`, `0abc.txt` and the file under `_index/` were met.
    expect(all.skipped).toBe(3);
    expect((await bucketKeys(stack.client, s3.bucket)).sort()).toEqual([...UNDER, ...BESIDE].sort());
    await stack.raw.close?.();
  });

  it('all with an empty prefix removes only imgrelay keys: other data at the root stays, the purge log too', async () => {
    const stack = stackOf(s3, '');
    const foreign = ['folder/', '0data.bin', 'abc/def.txt', 'deadbeef/source', `${'a'.repeat(64)}/notes.txt`, 'z'];
    for (const key of foreign) await putObject(stack.client, s3.bucket, key);
    await storeSources(stack.indexed, [...A, ...B]);
    const log = await stack.purgeable.guarded.putChecked('_purge/000000000000001-abc-def', await entryOf(A[0]));
    expect(log).toBe(true);
    const result = await purgeStore(stack.purgeable, selectors({ all: true }));
    expect(result.removed).toBe((A.length + B.length) * 2);
    expect(result.failures).toBe(0);
    expect(result.skipped).toBe(5); // every foreign key but `z`, which no hex prefix lists
    expect((await bucketKeys(stack.client, s3.bucket)).sort()).toEqual([...foreign, '_purge/000000000000001-abc-def'].sort());
    await stack.raw.close?.();
  });
});

describe('10,000 stored sources across 100 hosts', () => {
  const HOSTS = 100;
  const PER_HOST = 100;
  const sourcesOf = (host: number) =>
    Array.from({ length: PER_HOST }, (_, i) => `https://h${host}.test/images/${i}.jpg`);

  it('purging one host sends requests only for that host\'s markers and entries, a few per source', async () => {
    const stack = stackOf(s3, 'imgrelay/');
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

    const left = await bucketKeys(stack.client, s3.bucket, 'imgrelay/');
    expect(left.filter((key) => !key.startsWith('imgrelay/_index/')).length).toBe(all.length - PER_HOST);
    expect(left.filter((key) => key.startsWith('imgrelay/_index/host/h42.test/'))).toEqual([]);
    await stack.raw.close?.();
  }, 600_000); // 20,000 PUTs to an in-process server on a shared 2-core machine: minutes, not seconds
});
