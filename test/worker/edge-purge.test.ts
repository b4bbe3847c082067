/**
 * The edge follows the Node admin's purges, in workerd (docs/edge.md "Purges at the edge"): the Worker reads the
 * purge log from the R2 bucket it shares with the Node service's S3 store, drops purged entries from the isolate's
 * memory, and never serves a purged entry from the Cache API (any variant, any format bucket) or from R2.
 *
 * The Node admin's side is the code it runs against the shared bucket — resolvePurge, purgeStore and PurgeLog — here
 * in workerd against the same R2 binding, because the admin service itself (node:http) cannot load in workerd.
 * The image at the origin is really replaced before the purge, so "not served" is visible in the bytes.
 */
import { env } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import { purgeStore } from '../../src/admin/local-purge.js';
import { PurgeLog } from '../../src/admin/purge-log.js';
import { resolvePurge } from '../../src/admin/selectors.js';
import { cacheApiUrl, type CacheLike } from '../../src/cache/cache-api-store.js';
import { cacheKey, SOURCE_VARIANT, storeKey } from '../../src/cache/keys.js';
import { DEFAULT_SKEW_MS } from '../../src/cache/purge-fence.js';
import { createR2Store } from '../../src/cache/r2-store.js';
import { guardStore } from '../../src/cache/store-guard.js';
import { silentLogger } from '../../src/logger.js';
import { freshEdge, IMAGES, NODE_ORIGIN, originalBytes, originHits, sha256, unique, viaEdge } from './helpers.js';
import { IMAGE_HOST } from './lab-hosts.js';

const POLL_MS = 100;
/** A request this long after the purge log entry was written must not get purged bytes (2 polls + slack). */
const BOUND_MS = 2 * POLL_MS + 50;
const AVIF_ACCEPT = 'image/avif,image/webp,image/*,*/*;q=0.8';
const WEBP_ACCEPT = 'image/webp,image/*,*/*;q=0.8';
const JPEG_ACCEPT = 'image/jpeg,image/*;q=0.8';
const cacheApi = () => (globalThis as unknown as { caches: { default: CacheLike } }).caches.default;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
/** The clock skew the fence tolerates (purge-fence.ts DEFAULT_SKEW_MS): copies begun within it are not stored. */
const SKEW_MS = DEFAULT_SKEW_MS;
/** A purge log key's time (ms): `_purge/<ms>-<instance>-<random>`. */
const timeOf = (logKey: string) => Number(/^_purge\/(\d+)-/.exec(logKey)![1]);

/** An edge configuration of its own: its own R2 prefix, so its purge log is this test's alone. */
function edgeVars(extra: Record<string, unknown> = {}) {
  return { IMGRELAY_S3_PREFIX: unique('edge-purge'), IMGRELAY_PURGE_POLL_MS: String(POLL_MS),
    IMGRELAY_ORIGIN_URL: NODE_ORIGIN, ...extra };
}

/** The Node service's view of the shared bucket: its guarded S3-format store and its purge log. */
function nodeSide(prefix: string, clockAheadMs = 0) {
  const raw = createR2Store(env.IMGRELAY_R2, { prefix });
  const guarded = guardStore(raw, { timeoutMs: 5000, logger: silentLogger });
  const log = new PurgeLog({ store: guarded, instanceId: 'node1', pollMs: POLL_MS, apply: async () => 0,
    logger: silentLogger, now: () => Date.now() + clockAheadMs });
  return { raw, guarded, log };
}

/** What the Node admin's POST /purge does to the shared bucket: purge the store, then append to the purge log. */
async function nodeAdminPurge(prefix: string, body: unknown, clockAheadMs = 0): Promise<string> {
  const { raw, guarded, log } = nodeSide(prefix, clockAheadMs);
  const { selectors } = resolvePurge(body);
  await purgeStore({ guarded, raw }, selectors);
  const key = await log.append(selectors);
  expect(key).toBeDefined();
  return key!;
}

/** The same image in several URL forms, variants and format buckets. */
function variantsOf(source: string): Array<[name: string, path: string, init?: RequestInit]> {
  const query = `/?url=${encodeURIComponent(source)}&w=120&output=auto`;
  return [
    ['legacy relay', `/?${source}`],
    ['w=120 avif bucket', query, { headers: { accept: AVIF_ACCEPT } }],
    ['w=120 webp bucket', query, { headers: { accept: WEBP_ACCEPT } }],
    ['w=120 base bucket', query, { headers: { accept: JPEG_ACCEPT } }],
    ['path form width=80', `/cdn-cgi/image/width=80,format=webp/${source}`],
  ];
}

async function cacheStates(edgeOf: () => ReturnType<typeof freshEdge>, source: string): Promise<string[]> {
  const states: string[] = [];
  for (const [name, path, init] of variantsOf(source)) {
    const response = await viaEdge(edgeOf(), path, init);
    expect(response.status, name).toBe(200);
    await response.arrayBuffer();
    states.push(`${name}: ${response.headers.get('x-cache')}`);
  }
  return states;
}

const all = (source: string, state: string) => variantsOf(source).map(([name]) => `${name}: ${state}`);
/** Digests of the image before (wood) and after (ladybird) it is replaced at the origin. */
const wood = async () => sha256(await originalBytes('/202107/abc_1024.jpg'));
const ladybird = async () => sha256(await originalBytes('/photo.jpg'));

describe('the edge follows purges from the purge log in R2', () => {
  const kinds: Array<[string, (source: string, tag: string) => unknown, controlKept: boolean]> = [
    ['url', (source) => ({ urls: [source] }), true],
    ['host', () => ({ hosts: [IMAGE_HOST] }), false],
    ['tag', (_source, tag) => ({ tags: [tag] }), true],
    ['all', () => ({ all: true }), false],
  ];

  for (const [kind, bodyOf, controlKept] of kinds) {
    it(`purge by ${kind}: no variant or format bucket is served again from memory or the Cache API`, async () => {
      const id = unique(kind);
      const source = `${IMAGES}/replaced.jpg?case=${id}`;
      const control = `${IMAGES}/cached.jpg?case=${id}`;
      const vars = edgeVars();
      const edge = freshEdge(vars);
      expect(await cacheStates(() => edge, source)).toEqual(all(source, 'MISS'));
      const tag = (await viaEdge(edge, `/?${source}`)).headers.get('surrogate-key')!.split(' ')[0];
      await viaEdge(edge, `/?${control}`);
      expect(await cacheStates(() => edge, source)).toEqual(all(source, 'HIT-MEMORY'));
      // Every variant is in the Cache API itself: an isolate with no R2 (and no purge log) finds them there.
      const cacheOnly = () => freshEdge({ ...vars, IMGRELAY_R2: undefined });
      expect(await cacheStates(cacheOnly, source)).toEqual(all(source, 'HIT-STORE'));
      const originBefore = await originHits(`/replaced.jpg?case=${id}`);

      await fetch(`${IMAGES}/__replace?case=${id}`);
      await nodeAdminPurge(vars.IMGRELAY_S3_PREFIX, bodyOf(source, tag));
      await sleep(BOUND_MS);

      // A new isolate (Cache API, R2): every variant and bucket is fetched again.
      const key = await storeKey(cacheKey(new URL(source).href, SOURCE_VARIANT));
      expect(await cacheStates(() => freshEdge(vars), source)).toEqual(all(source, 'MISS'));
      expect(await originHits(`/replaced.jpg?case=${id}`)).toBe(originBefore + 1);
      // The isolate that held them in memory: none of its copies is served (what it finds now came after the purge).
      const states = await cacheStates(() => edge, source);
      expect(states.filter((state) => state.endsWith('HIT-MEMORY'))).toEqual([]);
      const relayed = await viaEdge(edge, `/?${source}`);
      expect(await sha256(await relayed.arrayBuffer())).toBe(await ladybird());
      // The old copy is gone from the Cache API (deleted when read, or never replaced within the fence window).
      const cached = await cacheApi().match(new Request(cacheApiUrl(key)));
      if (cached) expect(await sha256(await cached.arrayBuffer())).not.toBe(await wood());

      // Only what the purge names goes.
      const controlState = (await viaEdge(edge, `/?${control}`)).headers.get('x-cache');
      expect(controlState).toBe(controlKept ? 'HIT-MEMORY' : 'MISS');
    });
  }

  it('a load that began before the purge and ended after it is not kept (memory, Cache API)', async () => {
    const id = unique('in-flight');
    const source = `${IMAGES}/slow-replaced.jpg?case=${id}`;
    const vars = edgeVars();
    const edge = freshEdge(vars);
    const inFlight = viaEdge(edge, `/?${source}`);
    await sleep(300);
    await fetch(`${IMAGES}/__replace?case=${id}`);
    const purgedAt = timeOf(await nodeAdminPurge(vars.IMGRELAY_S3_PREFIX, { urls: [source] }));
    const late = await inFlight; // the old bytes: it was asked before the purge
    expect(await sha256(await late.arrayBuffer())).toBe(await wood());
    await sleep(BOUND_MS);

    // The isolate that ran the load: its memory, Cache API and R2 copies are all the old load's; none is served.
    const next = await viaEdge(edge, `/?${source}`);
    expect(next.headers.get('x-cache')).toBe('MISS');
    expect(await sha256(await next.arrayBuffer())).toBe(await ladybird());
    // A new isolate: never the old bytes. It may find the copy the load above stored (begun after the purge, by more
    // than the fence's clock skew when the machine is not too slow): that copy says so itself.
    const other = await viaEdge(freshEdge(vars), `/?${source}`);
    expect(['MISS', 'HIT-STORE']).toContain(other.headers.get('x-cache'));
    expect(await sha256(await other.arrayBuffer())).toBe(await ladybird());
    const key = await storeKey(cacheKey(new URL(source).href, SOURCE_VARIANT));
    const stored = await createR2Store(env.IMGRELAY_R2, { prefix: vars.IMGRELAY_S3_PREFIX }).get(key);
    if (stored) expect(stored.meta.startedAt).toBeGreaterThanOrEqual(purgedAt + SKEW_MS);
  });

  it('a write of old bytes that lands in R2 after the purge (another instance\'s queue) is a miss, and is removed', async () => {
    const id = unique('late-write');
    const source = `${IMAGES}/replaced.jpg?case=${id}`;
    const vars = edgeVars();
    const r2Only = () => freshEdge(vars, { cache: null });
    const first = await viaEdge(r2Only(), `/?${source}`);
    await first.arrayBuffer();
    const r2 = createR2Store(env.IMGRELAY_R2, { prefix: vars.IMGRELAY_S3_PREFIX });
    const key = await storeKey(cacheKey(new URL(source).href, SOURCE_VARIANT));
    const old = await r2.get(key);
    expect(old).toBeDefined();

    await fetch(`${IMAGES}/__replace?case=${id}`);
    await nodeAdminPurge(vars.IMGRELAY_S3_PREFIX, { hosts: [IMAGE_HOST] });
    await r2.put(key, old!); // lands late, with its old storedAt
    const next = await viaEdge(r2Only(), `/?${source}`);
    expect(next.headers.get('x-cache')).toBe('MISS');
    expect(await sha256(await next.arrayBuffer())).toBe(await ladybird());
    expect((await r2.get(key))?.meta.etag).not.toBe(old!.meta.etag);
  });

  it('keeps its own load begun after the purge at once; the shared tiers take copies begun over 1 s (skew) after it',
    async () => {
      const id = unique('window');
      const source = `${IMAGES}/replaced.jpg?case=${id}`;
      const vars = edgeVars();
      const edge = freshEdge(vars);
      await (await viaEdge(edge, `/?${source}`)).arrayBuffer();
      const purgedAt = timeOf(await nodeAdminPurge(vars.IMGRELAY_S3_PREFIX, { urls: [source] }));
      await sleep(BOUND_MS);
      // The isolate knew the purge when its load started (the fence's ticket): what it loads is kept in memory at once.
      expect((await viaEdge(edge, `/?${source}`)).headers.get('x-cache')).toBe('MISS');
      expect((await viaEdge(edge, `/?${source}`)).headers.get('x-cache')).toBe('HIT-MEMORY');
      // Other isolates judge the shared copies by clocks: no copy begun within the skew after the purge is stored.
      const key = await storeKey(cacheKey(new URL(source).href, SOURCE_VARIANT));
      const r2 = createR2Store(env.IMGRELAY_R2, { prefix: vars.IMGRELAY_S3_PREFIX });
      const early = await r2.get(key);
      if (early) expect(early.meta.startedAt).toBeGreaterThanOrEqual(purgedAt + SKEW_MS);
      await sleep(Math.max(0, purgedAt + SKEW_MS + 100 - Date.now()));
      // Past the skew (not the 41 s a load may take: entries say when their work began), copies are stored again.
      const first = (await viaEdge(freshEdge(vars), `/?${source}`)).headers.get('x-cache');
      expect(['MISS', 'HIT-STORE']).toContain(first);
      expect((await viaEdge(freshEdge(vars), `/?${source}`)).headers.get('x-cache')).toBe('HIT-STORE');
      expect(edge.purges?.stats).toMatchObject({ applied: 1, failures: 0 });
    });

  it('a purger whose clock is ahead costs one load per request, not a reload loop; the isolate keeps its load', async () => {
    const id = unique('clock-ahead');
    const source = `${IMAGES}/replaced.jpg?case=${id}`;
    const vars = edgeVars();
    const edge = freshEdge(vars);
    await (await viaEdge(edge, `/?${source}`)).arrayBuffer();
    await fetch(`${IMAGES}/__replace?case=${id}`);
    // The Node service's clock runs 20 s ahead of Cloudflare's: the purge is dated after the edge's next loads begin.
    await nodeAdminPurge(vars.IMGRELAY_S3_PREFIX, { urls: [source] }, 20_000);
    await sleep(BOUND_MS);
    const before = await originHits(`/replaced.jpg?case=${id}`);
    const next = await viaEdge(edge, `/?${source}`);
    expect(next.headers.get('x-cache')).toBe('MISS');
    expect(await sha256(await next.arrayBuffer())).toBe(await ladybird());
    expect(await originHits(`/replaced.jpg?case=${id}`)).toBe(before + 1);
    expect((await viaEdge(edge, `/?${source}`)).headers.get('x-cache')).toBe('HIT-MEMORY');
  });

  it('an entry of an older version (no startedAt) stored within a load\'s deadline after the purge is a miss', async () => {
    const id = unique('legacy');
    const source = `${IMAGES}/replaced.jpg?case=${id}`;
    const vars = edgeVars();
    const r2Only = () => freshEdge(vars, { cache: null });
    await (await viaEdge(r2Only(), `/?${source}`)).arrayBuffer();
    const r2 = createR2Store(env.IMGRELAY_R2, { prefix: vars.IMGRELAY_S3_PREFIX });
    const key = await storeKey(cacheKey(new URL(source).href, SOURCE_VARIANT));
    const old = (await r2.get(key))!;
    await fetch(`${IMAGES}/__replace?case=${id}`);
    const purgedAt = timeOf(await nodeAdminPurge(vars.IMGRELAY_S3_PREFIX, { urls: [source] }));
    // Dated only when its load ended, 5 s after the purge: its fetch may have begun before it (the window is 41 s).
    const { startedAt: _dropped, ...legacyMeta } = old.meta;
    await r2.put(key, { body: old.body, meta: { ...legacyMeta, storedAt: purgedAt + 5000 } });
    const next = await viaEdge(r2Only(), `/?${source}`);
    expect(next.headers.get('x-cache')).toBe('MISS');
    expect(await sha256(await next.arrayBuffer())).toBe(await ladybird());
  });

  it('an isolate that has not read the whole log yet serves nothing from the Cache API or R2', async () => {
    const id = unique('backlog');
    const [first, second] = [`${IMAGES}/replaced.jpg?case=${id}`, `${IMAGES}/cached.jpg?case=${id}`];
    const vars = edgeVars();
    for (const source of [first, second]) await (await viaEdge(freshEdge(vars), `/?${source}`)).arrayBuffer();
    // 45 purges of other images: more than one read of the log takes (40).
    const { log } = nodeSide(vars.IMGRELAY_S3_PREFIX);
    for (let i = 0; i < 45; i++) {
      await log.append({ sources: [`${IMAGES}/other-${i}.jpg`], hosts: [], prefixes: [], tags: [], all: false });
    }
    const originBefore = await originHits(`/replaced.jpg?case=${id}`);

    const edge = freshEdge(vars);
    const partial = await viaEdge(edge, `/?${first}`);
    expect(partial.headers.get('x-cache')).toBe('MISS');
    expect(await originHits(`/replaced.jpg?case=${id}`)).toBe(originBefore + 1);
    expect(edge.purges?.stats.applied).toBe(40);
    // The next request reads the rest first; then the store is trusted again.
    const caughtUp = await viaEdge(edge, `/?${second}`);
    expect(edge.purges?.stats.applied).toBe(45);
    expect(caughtUp.headers.get('x-cache')).toBe('HIT-STORE');
  });
});
