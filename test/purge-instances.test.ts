/**
 * A purge reaches every instance: two instances share one S3 bucket (in-process s3rver); a purge on A is written to
 * the purge log in the bucket, and B — which held the image in memory — stops serving it within the poll bound
 * (IMGRELAY_PURGE_POLL_MS=200; we allow a generous deadline) and serves the origin's new bytes.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { settleDelays } from '../src/admin/purge.js';
import { DEFAULT_SKEW_MS } from '../src/cache/purge-fence.js';
import type { StoredEntry } from '../src/cache/types.js';
import type { RunningNode } from '../src/node.js';
import { ZAKER, bootImgrelay, zakerAt } from './helpers/imgrelay.js';
import { type TestOrigin, startOrigin } from './helpers/origin.js';
import { type TestS3, startS3ForService } from './helpers/s3.js';
import { TOKEN_A, adminFetch, eventually, fetchImage, hashOf, purge, solidPng, storeKeys } from './helpers/admin.js';
import { surrogateKeys } from '../src/images.js';
import { digest } from './helpers/imgrelay.js';

const POLL_MS = 200;
/** The bound is one poll interval plus one poll; this deadline only guards against a hang on a loaded machine. */
const DEADLINE_MS = 15_000;

let origin: TestOrigin;
let s3: TestS3;
beforeAll(async () => {
  origin = await startOrigin();
  s3 = await startS3ForService();
});
afterAll(async () => {
  await origin.close();
  await s3.close();
});

const s3Env = () => ({
  ...zakerAt(origin.port), IMGRELAY_STORE: 's3', IMGRELAY_S3_BUCKET: s3.bucket, IMGRELAY_S3_ENDPOINT: s3.endpoint,
  IMGRELAY_S3_FORCE_PATH_STYLE: 'true', IMGRELAY_PURGE_POLL_MS: String(POLL_MS), IMGRELAY_ADMIN_TOKENS: TOKEN_A,
});

describe('purge across instances (shared S3 store, purge log)', () => {
  it('B stops serving the purged image from memory within the poll bound, and serves the new bytes', async () => {
    const [a, b] = [await bootImgrelay(s3Env()), await bootImgrelay(s3Env())];
    try {
      const old = await solidPng('#aa0000');
      const fresh = await solidPng('#00aa00');
      origin.serve('/shared.png', old, 'image/png');
      const url = (node: RunningNode) => `${node.url}/?http://${ZAKER}/shared.png`;
      const other = (node: RunningNode) => `${node.url}/?url=${encodeURIComponent(`http://${ZAKER}/shared.png`)}&w=10`;
      expect((await fetchImage(url(a))).cache).toBe('MISS');
      await a.store!.writes.drain(10_000);
      expect((await fetchImage(url(b))).cache).toBe('HIT-STORE');
      expect((await fetchImage(url(b))).cache).toBe('HIT-MEMORY');
      expect((await fetchImage(other(b))).status).toBe(200);

      // B's own write of the variant has landed (a write still queued when the purge runs is the settle pass's job).
      await b.store!.writes.drain(10_000);
      origin.serve('/shared.png', fresh, 'image/png');
      const answer = await purge(a, { urls: [`http://${ZAKER}/shared.png`] });
      expect(answer.instances).toBe('logged');
      expect(answer.purgeLog).toMatch(/^_purge\/\d{15}-[0-9a-f]+-[a-z0-9]+$/);
      expect(await storeKeys(a, '_purge/')).toContain(answer.purgeLog);

      // B applies the log entry: its next answer is built again, from the origin's new bytes.
      let last = await fetchImage(url(b));
      const reached = await eventually(async () => {
        last = await fetchImage(url(b));
        return last.cache !== 'HIT-MEMORY';
      }, DEADLINE_MS, 25);
      expect(reached).toBe(true);
      expect(last.cache).toBe('MISS');
      expect(last.digest).toBe(digest(fresh));
      // Every variant went, not only the URL form that was named.
      expect((await fetchImage(other(b))).cache).toBe('MISS');
      expect(b.admin.purgeLog?.stats().applied).toBeGreaterThanOrEqual(1);
      // A does not apply its own entry again (it purged itself directly).
      expect(a.admin.purgeLog?.stats().applied).toBe(0);
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });

  it('does not sweep its memory for log entries older than its start (minus a minute of clock skew) and prunes those past a day', async () => {
    const a = await bootImgrelay(s3Env());
    try {
      origin.serve('/kept.png', await solidPng('#0000aa'), 'image/png');
      const tenMinutesAgo = Date.now() - 10 * 60_000;
      const twoDaysAgo = Date.now() - 2 * 86_400_000;
      await a.store!.raw.put(logKey(tenMinutesAgo, 'elsewhere'), logEntry({ all: true }));
      await a.store!.raw.put(logKey(twoDaysAgo, 'elsewhere'), logEntry({ all: true }));
      expect((await fetchImage(`${a.url}/?http://${ZAKER}/kept.png`)).status).toBe(200);
      const before = a.admin.purgeLog!.stats().polls;
      expect(await eventually(async () => a.admin.purgeLog!.stats().polls >= before + 2, DEADLINE_MS)).toBe(true);
      // The ten-minute-old `all` was not replayed over the fresh cache; the two-day-old one was pruned.
      expect((await fetchImage(`${a.url}/?http://${ZAKER}/kept.png`)).cache).toBe('HIT-MEMORY');
      const log = await storeKeys(a, '_purge/');
      expect(log).toContain(logKey(tenMinutesAgo, 'elsewhere'));
      expect(log).not.toContain(logKey(twoDaysAgo, 'elsewhere'));

      // A fresh entry from another instance is applied, whoever wrote it.
      await a.store!.raw.put(logKey(Date.now(), 'elsewhere'), logEntry({ all: true }));
      expect(await eventually(async () =>
        (await fetchImage(`${a.url}/?http://${ZAKER}/kept.png`)).cache !== 'HIT-MEMORY', DEADLINE_MS, 25)).toBe(true);
    } finally {
      await a.close();
    }
  });
});

describe('purge across instances: late writes and unreachable tiers', () => {
  it('an old entry that another instance\'s write put back after the purge is refused on read, deleted, and built anew', async () => {
    const a = await bootImgrelay(s3Env());
    try {
      const source = `http://${ZAKER}/late.png`;
      const [old, fresh] = [await solidPng('#aa00aa'), await solidPng('#00aaaa')];
      origin.serve('/late.png', fresh, 'image/png');
      const answer = await purge(a, { urls: [source] });
      expect(answer.status).toBe('complete');
      // What B's queued write of the old picture looks like when it lands now: its work began before the purge.
      const key = `${await hashOf(source)}/source`;
      const startedAt = Date.now() - 5_000;
      await a.store!.raw.put(key, { body: old, meta: { contentType: 'image/png', etag: '"old"', storedAt: startedAt + 100,
        startedAt, expiresAt: Date.now() + 3_600_000, sourceUrl: source, size: old.byteLength,
        tags: await surrogateKeys(new URL(source)) } });
      const served = await fetchImage(`${a.url}/?${source}`);
      expect(served.cache).toBe('MISS');
      expect(served.digest).toBe(digest(fresh));
      // Deleted on read (in the background), then replaced by the new picture's write.
      expect(await eventually(async () => (await a.store!.raw.get(key))?.meta.etag !== '"old"', DEADLINE_MS)).toBe(true);
      const stats = await (await adminFetch(a, '/stats')).json() as { purgeFence: { fenced: { read: number } } };
      expect(stats.purgeFence.fenced.read).toBeGreaterThanOrEqual(1);
    } finally {
      await a.close();
    }
  });

  it('an entry of an older version (no startedAt) that a load begun before the purge stored after it is refused on read', async () => {
    const a = await bootImgrelay(ownLog('legacy-late'));
    try {
      const source = `http://${ZAKER}/legacy-late.png`;
      const [old, fresh] = [await solidPng('#a0a0a0'), await solidPng('#0a0a0a')];
      origin.serve('/legacy-late.png', fresh, 'image/png');
      expect((await purge(a, { urls: [source] })).status).toBe('complete');
      const answeredAt = Date.now();
      // An older version stamped only storedAt, when its load ENDED: 3 s after the purge, well within a load's length.
      const { startedAt: _, ...legacyMeta } = (await lateEntry(source, old, answeredAt)).meta;
      await a.store!.raw.put(`${await hashOf(source)}/source`, { body: old, meta: { ...legacyMeta, storedAt: answeredAt + 3_000 } });
      const served = await fetchImage(`${a.url}/?${source}`);
      expect(served.cache).toBe('MISS');
      expect(served.digest).toBe(digest(fresh));
    } finally {
      await a.close();
    }
  });

  it('an instance started after a purge refuses the late-landed pre-purge entry (the log entry predates its start)', async () => {
    const a = await bootImgrelay(ownLog('restart'));
    let b: RunningNode | undefined;
    try {
      const source = `http://${ZAKER}/restart.png`;
      const [old, fresh] = [await solidPng('#aaaa00'), await solidPng('#00aa00')];
      origin.serve('/restart.png', fresh, 'image/png');
      // Ten minutes ago another instance purged the source; a write of the old picture it had queued landed after.
      const purgedAt = Date.now() - 10 * 60_000;
      await a.store!.raw.put(logKey(purgedAt, 'elsewhere'), logEntry({ sources: [source] }));
      await a.store!.raw.put(`${await hashOf(source)}/source`, await lateEntry(source, old, purgedAt - 5_000));
      b = await bootImgrelay(ownLog('restart'));
      expect(await eventually(async () => b!.admin.purgeLog!.complete, DEADLINE_MS)).toBe(true);
      const served = await fetchImage(`${b.url}/?${source}`);
      expect(served.cache).toBe('MISS');
      expect(served.digest).toBe(digest(fresh));
      expect((await fetchImage(`${b.url}/?${source}`)).digest).toBe(digest(fresh));
    } finally {
      await Promise.all([a.close(), b?.close()]);
    }
  });

  it('a late write that lands after the first settle pass is deleted from the store by the second, unread', async () => {
    // Settle passes at 2 × 500 ms and at 500 + 2 × 500 + 1000 ms: room between them for the first late write.
    const a = await bootImgrelay({ ...s3Env(), IMGRELAY_STORE_TIMEOUT_MS: '500', IMGRELAY_PURGE_POLL_MS: '500' });
    try {
      const source = `http://${ZAKER}/settle.png`;
      const old = await solidPng('#550055');
      const purgedAt = Date.now();
      expect((await purge(a, { urls: [source] })).instances).toBe('logged');
      const key = `${await hashOf(source)}/source`;
      const gone = () => eventually(async () => (await a.store!.raw.get(key)) === undefined, DEADLINE_MS);
      // A first late write is deleted by the pass at two poll intervals; one landing after that pass (within the
      // write deadline of an instance that learnt of the purge late) by the second pass, though nobody reads it.
      await a.store!.raw.put(key, await lateEntry(source, old, purgedAt - 5_000));
      expect(await gone()).toBe(true);
      await a.store!.raw.put(key, await lateEntry(source, old, purgedAt - 5_000));
      expect(await gone()).toBe(true);
      expect(Date.now() - purgedAt).toBeLessThan(DEADLINE_MS);
    } finally {
      await a.close();
    }
  });

  it('the settle passes delete only what may hold the old bytes: new bytes written after the purge stay servable', async () => {
    const a = await bootImgrelay({ ...s3Env(), IMGRELAY_STORE_TIMEOUT_MS: '500', IMGRELAY_PURGE_POLL_MS: '500' });
    try {
      // No origin route: a request that is not served from the store fails.
      const source = `http://${ZAKER}/settle-keeps.png`;
      const [old, fresh] = [await solidPng('#660066'), await solidPng('#006600')];
      const purgedAt = Date.now();
      expect((await purge(a, { urls: [source] })).instances).toBe('logged');
      const dir = await hashOf(source);
      const lateKey = `${dir}/${'0'.repeat(64)}`;
      const gone = () => eventually(async () => (await a.store!.raw.get(lateKey)) === undefined, DEADLINE_MS);
      // Another instance's new bytes: work begun after the purge (past the clock skew every reader allows for).
      await a.store!.raw.put(`${dir}/source`, await lateEntry(source, fresh, Date.now() + DEFAULT_SKEW_MS));
      for (let pass = 0; pass < settleDelays(500, 500).length; pass++) {
        await a.store!.raw.put(lateKey, await lateEntry(source, old, purgedAt - 5_000));
        expect(await gone()).toBe(true);
      }
      await new Promise((resolve) => setTimeout(resolve, 300)); // the pass's other deletes, had it any
      const served = await fetchImage(`${a.url}/?${source}`);
      expect(served.status).toBe(200);
      expect(served.cache).toBe('HIT-STORE');
      expect(served.digest).toBe(digest(fresh));
    } finally {
      await a.close();
    }
  });

  it('bytes whose work began within the clock skew after a purge are not stored, as every instance would refuse them', async () => {
    const a = await bootImgrelay(s3Env());
    try {
      const source = `http://${ZAKER}/skew.png`;
      const answer = await purge(a, { urls: [source] });
      const purgedAt = Number(/^_purge\/(\d{15})-/.exec(answer.purgeLog ?? '')?.[1]);
      const dir = await hashOf(source);
      const [close, clear] = [`${dir}/${'1'.repeat(64)}`, `${dir}/${'2'.repeat(64)}`];
      // Queued as a load's result is: one whose work began 100 ms after the purge, one past the skew.
      a.store!.writes.enqueue(close, await lateEntry(source, await solidPng('#0000aa'), purgedAt + 100));
      a.store!.writes.enqueue(clear, await lateEntry(source, await solidPng('#0000ab'), purgedAt + DEFAULT_SKEW_MS + 100));
      await a.store!.writes.drain(DEADLINE_MS);
      expect(await a.store!.raw.get(close)).toBeUndefined();
      expect((await a.store!.raw.get(clear))?.meta.startedAt).toBe(purgedAt + DEFAULT_SKEW_MS + 100);
    } finally {
      await a.close();
    }
  });

  it('a purge while the store is down answers 207 and names what it could not reach; memory is purged all the same', async () => {
    const a = await bootImgrelay({ ...s3Env(), IMGRELAY_STORE_TIMEOUT_MS: '500' });
    try {
      origin.serve('/down.png', await solidPng('#123456'), 'image/png');
      expect((await fetchImage(`${a.url}/?http://${ZAKER}/down.png`)).status).toBe(200);
      await a.store!.writes.drain(10_000);
      await s3.stop();
      const started = Date.now();
      const answer = await purge(a, { hosts: [ZAKER] }, 207);
      expect(Date.now() - started).toBeLessThan(DEADLINE_MS);
      expect(answer).toMatchObject({ status: 'partial', memory: 1 });
      const state = Object.fromEntries(answer.tiers.map((t) => [t.tier, t.state]));
      expect(state).toEqual({ memory: 'done', store: 'failed', instances: 'failed' });
      expect(answer.unreached).toEqual([expect.stringMatching(/^store s3: \d+ call\(s\) failed/),
        'instances purge log: not reached: the purge log could not be written to the store (retry the purge)']);
    } finally {
      await s3.restart();
      await a.close();
    }
  });
});

/** What another instance's queued write of `body` looks like when it lands: its work began at `startedAt`. */
async function lateEntry(source: string, body: Uint8Array, startedAt: number): Promise<StoredEntry> {
  return { body, meta: { contentType: 'image/png', etag: '"old"', storedAt: startedAt + 100, startedAt,
    expiresAt: Date.now() + 3_600_000, sourceUrl: source, size: body.byteLength, tags: await surrogateKeys(new URL(source)) } };
}

/** Under a prefix of their own: the other tests' purge log (their `all` entries) stays out of these instances' fences. */
const ownLog = (prefix: string) => ({ ...s3Env(), IMGRELAY_S3_PREFIX: prefix });

const logKey = (at: number, instance: string) => `_purge/${String(at).padStart(15, '0')}-${instance}-test`;

function logEntry(selectors: Partial<{ sources: string[]; hosts: string[]; prefixes: string[]; tags: string[]; all: boolean }>)
  : StoredEntry {
  const body = new TextEncoder().encode(JSON.stringify({ v: 1, selectors: {
    sources: [], hosts: [], prefixes: [], tags: [], all: false, ...selectors } }));
  return { body, meta: { contentType: 'application/json', etag: '"t"', storedAt: Date.now(), expiresAt: Date.now() + 86_400_000,
    sourceUrl: 'imgrelay:purge-log', size: body.byteLength, tags: [] } };
}
