/**
 * The Worker's purge route, POST /_imgrelay/purge, in workerd: with the right bearer token a purge is written to the
 * purge log in R2 and applied at once, so this isolate and every other one (a new isolate here: the data centre's
 * Cache API) stop serving the entry; without a token, or with a wrong one, it is a 401 and nothing is purged.
 */
import { env } from 'cloudflare:test';
import { describe, expect, it } from 'vitest';
import { PurgeLog } from '../../src/admin/purge-log.js';
import { cacheKey, SOURCE_VARIANT, storeKey } from '../../src/cache/keys.js';
import { createR2Store } from '../../src/cache/r2-store.js';
import { guardStore } from '../../src/cache/store-guard.js';
import type { Edge } from '../../src/edge.js';
import { silentLogger } from '../../src/logger.js';
import { freshEdge, IMAGES, originHits, problemOf, unique, viaEdge } from './helpers.js';

const TOKEN = 'edge-purge-token-0123456789';
const POLL_MS = 100;
const purgeVars = (extra: Record<string, unknown> = {}) => ({ IMGRELAY_S3_PREFIX: unique('edge-route'),
  IMGRELAY_PURGE_POLL_MS: String(POLL_MS), IMGRELAY_EDGE_PURGE_TOKEN: TOKEN, ...extra });
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function postPurge(edge: Edge, body: unknown, authorization?: string): Promise<Response> {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (authorization !== undefined) headers.authorization = authorization;
  return viaEdge(edge, '/_imgrelay/purge', { method: 'POST', headers, body: JSON.stringify(body) });
}

/** A source cached in this isolate's memory and in the Cache API (and R2). */
async function cached(edge: Edge, name: string): Promise<string> {
  const path = `/replaced.jpg?case=${unique(name)}`;
  await (await viaEdge(edge, `/?${IMAGES}${path}`)).arrayBuffer();
  expect((await viaEdge(edge, `/?${IMAGES}${path}`)).headers.get('x-cache')).toBe('HIT-MEMORY');
  return path;
}

const stateOf = async (edge: Edge, path: string) => {
  const response = await viaEdge(edge, `/?${IMAGES}${path}`);
  await response.arrayBuffer();
  return response.headers.get('x-cache');
};

describe('the Worker purge route', () => {
  for (const [what, authorization] of [['no token', undefined], ['a wrong token', `Bearer ${TOKEN}x`],
    ['a token that is a prefix', `Bearer ${TOKEN.slice(0, 20)}`], ['a Basic header', `Basic ${btoa(`u:${TOKEN}`)}`]]) {
    it(`refuses a purge with ${what}: 401, and the entry is still served from memory and the Cache API`, async () => {
      const vars = purgeVars();
      const edge = freshEdge(vars);
      const path = await cached(edge, 'refused');
      const response = await postPurge(edge, { all: true }, authorization);
      expect(response.status).toBe(401);
      expect(response.headers.get('cache-control')).toBe('no-store');
      expect((await problemOf(response)).code).toBe('E_UNAUTHORIZED');
      await sleep(2 * POLL_MS + 50);
      expect(await stateOf(edge, path)).toBe('HIT-MEMORY');
      expect(await stateOf(freshEdge(vars), path)).toBe('HIT-STORE');
      expect(edge.purges?.stats.applied).toBe(0);
    });
  }

  it('purges by tag with the right token: this isolate at once, a new one through the log in R2', async () => {
    const vars = purgeVars();
    const edge = freshEdge(vars);
    const [purged, kept] = [await cached(edge, 'purged'), await cached(edge, 'kept')];
    const tag = (await viaEdge(edge, `/?${IMAGES}${purged}`)).headers.get('surrogate-key')!.split(' ')[0];
    const hits = await originHits(purged);

    const response = await postPurge(edge, { tags: [tag] }, `Bearer ${TOKEN}`);
    expect(response.status).toBe(200);
    const report = (await response.json()) as { edge: { memory: number; purgeLog: string } };
    expect(report.edge.memory).toBe(1);
    expect(report.edge.purgeLog).toMatch(/^_purge\/\d{15}-edge[0-9a-f]{8}-/);
    expect(await stateOf(edge, purged)).toBe('MISS');
    expect(await stateOf(freshEdge(vars), purged)).toBe('MISS');
    expect(await originHits(purged)).toBe(hits + 2);
    expect(await stateOf(edge, kept)).toBe('HIT-MEMORY');
    expect(await stateOf(freshEdge(vars), kept)).toBe('HIT-STORE');
  });

  it('is disabled (503) without IMGRELAY_EDGE_PURGE_TOKEN, and 501 without R2 (no log to reach other isolates)', async () => {
    const disabled = await postPurge(freshEdge(purgeVars({ IMGRELAY_EDGE_PURGE_TOKEN: '' })), { all: true }, `Bearer ${TOKEN}`);
    expect(disabled.status).toBe(503);
    expect((await problemOf(disabled)).code).toBe('E_ADMIN_DISABLED');
    const noR2 = await postPurge(freshEdge(purgeVars({ IMGRELAY_R2: undefined })), { all: true }, `Bearer ${TOKEN}`);
    expect(noR2.status).toBe(501);
    expect((await problemOf(noR2)).code).toBe('E_NOT_IMPLEMENTED');
    const badBody = await postPurge(freshEdge(purgeVars()), { everything: true }, `Bearer ${TOKEN}`);
    expect(badBody.status).toBe(400);
    const get = await viaEdge(freshEdge(purgeVars()), '/_imgrelay/purge');
    expect(get.status).toBe(405);
  });

  it('deletes the purged source from R2 (no copy left for a new isolate once the fence forgets), keeps the others',
    async () => {
      const vars = purgeVars();
      const edge = freshEdge(vars);
      const [purged, kept] = [await cached(edge, 'r2-purged'), await cached(edge, 'r2-kept')];
      const r2 = createR2Store(env.IMGRELAY_R2, { prefix: vars.IMGRELAY_S3_PREFIX });
      const keyOf = async (path: string) => storeKey(cacheKey(new URL(IMAGES + path).href, SOURCE_VARIANT));
      expect(await r2.get(await keyOf(purged))).toBeDefined();
      const tag = (await viaEdge(edge, `/?${IMAGES}${purged}`)).headers.get('surrogate-key')!.split(' ')[0];

      const response = await postPurge(edge, { tags: [tag] }, `Bearer ${TOKEN}`);
      expect(response.status).toBe(200);
      const report = (await response.json()) as { edge: { r2: { removed: number; failures: number } } };
      expect(report.edge.r2).toMatchObject({ removed: 1, failures: 0 });
      expect(await r2.get(await keyOf(purged))).toBeUndefined();
      expect(await r2.get(await keyOf(kept))).toBeDefined();
    });

  it('prunes purge log entries past the retention as it reads the log: the log it lists stays bounded', async () => {
    const vars = purgeVars();
    const raw = createR2Store(env.IMGRELAY_R2, { prefix: vars.IMGRELAY_S3_PREFIX });
    const store = guardStore(raw, { timeoutMs: 5000, logger: silentLogger });
    const writerAt = (offsetMs: number) => new PurgeLog({ store, instanceId: 'node1', pollMs: POLL_MS,
      apply: async () => 0, logger: silentLogger, now: () => Date.now() + offsetMs });
    const none = { sources: [], hosts: [], prefixes: [], tags: ['nothing-cached'], all: false };
    const expired = await writerAt(-2 * 86_400_000).append(none);
    const recent = await writerAt(0).append(none);
    const listed = async () => {
      const keys: string[] = [];
      for await (const key of raw.list('_purge/')) keys.push(key);
      return keys;
    };
    expect(await listed()).toEqual([expired, recent]);
    // A new isolate's first request reads the log (and waits for it).
    const edge = freshEdge(vars);
    await cached(edge, 'prune');
    expect(await listed()).toEqual([recent]);
  });
});
