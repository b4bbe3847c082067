/**
 * The Worker's purge route, POST /_imgrelay/purge, in workerd: with the right bearer token a purge is written to the
 * purge log in R2 and applied at once, so this isolate and every other one (a new isolate here: the data centre's
 * Cache API) stop serving the entry; without a token, or with a wrong one, it is a 401 and nothing is purged.
 */
import { describe, expect, it } from 'vitest';
import type { Edge } from '../../src/edge.js';
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
});
