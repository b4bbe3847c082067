/** The guard over a healthy directory store (failure paths run against real S3 in test/store-faults.test.ts). */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { RelayError } from '../errors.js';
import { silentLogger } from '../logger.js';
import { createFsStore } from './fs-store.js';
import { guardStore, withDeadline } from './store-guard.js';

const dirs: string[] = [];
afterEach(async () => {
  await Promise.all(dirs.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
});

async function guardedFs() {
  const dir = await mkdtemp(join(tmpdir(), 'imgrelay-guard-'));
  dirs.push(dir);
  return guardStore(createFsStore({ dir, maxBytes: 1 << 20, logger: silentLogger }), {
    timeoutMs: 2000, logger: silentLogger, breaker: { failures: 1, coolDownMs: 60_000 },
  });
}

const entry = {
  body: new Uint8Array([1, 2, 3]),
  meta: { contentType: 'image/gif', etag: '"g"', storedAt: 1, expiresAt: 2, sourceUrl: 'https://a.example/g.gif',
    size: 3, tags: ['a'] },
};

describe('guardStore', () => {
  it('passes calls through to a healthy store', async () => {
    const guarded = await guardedFs();
    const source = randomBytes(32).toString('hex');
    await guarded.put(`${source}/source`, entry);
    expect((await guarded.get(`${source}/source`))?.meta.etag).toBe('"g"');
    expect((await guarded.head?.(`${source}/source`))?.tags).toEqual(['a']);
    const keys: string[] = [];
    for await (const key of guarded.list(source)) keys.push(key);
    expect(keys).toEqual([`${source}/source`]);
    expect(await guarded.deletePrefix(source)).toBe(1);
    expect(guarded.state()).toBe('closed');
    expect(guarded.errors).toBe(0);
  });

  it('throws a bad key back to the caller without counting it against the store', async () => {
    const guarded = await guardedFs();
    await expect(guarded.get('../../etc/passwd')).rejects.toBeInstanceOf(RelayError);
    await expect(guarded.put('nope', entry)).rejects.toMatchObject({ code: 'E_BAD_REQUEST' });
    expect(guarded.errors).toBe(0);
    expect(guarded.state()).toBe('closed'); // one failure would have opened it
  });

  it('answers a caller that already gave up with a miss, without touching the store', async () => {
    const guarded = await guardedFs();
    const key = `${randomBytes(32).toString('hex')}/source`;
    await guarded.put(key, entry);
    expect(await guarded.get(key, AbortSignal.abort())).toBeUndefined();
    expect(guarded.errors).toBe(0);
  });
});

describe('withDeadline', () => {
  it('settles by the deadline even when the work ignores its signal', async () => {
    const started = Date.now();
    await expect(withDeadline(() => new Promise<never>(() => undefined), 100)).rejects.toMatchObject({
      name: 'TimeoutError',
    });
    expect(Date.now() - started).toBeLessThan(100 + 2000);
  });

  it('hands the work a signal that fires at the deadline while it still runs', async () => {
    let seen: AbortSignal | undefined;
    const settled = withDeadline((signal) => {
      seen = signal;
      return new Promise(() => {});
    }, 50);
    await expect(settled).rejects.toMatchObject({ name: 'TimeoutError' });
    expect(seen?.aborted).toBe(true);
  });
});
