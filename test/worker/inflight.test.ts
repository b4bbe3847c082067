/**
 * The isolate's in-flight bound, in workerd (docs/edge.md "Limits at the edge"): concurrent 25 MiB relays through
 * one isolate (128 MB in all) cannot hold more than its budget (48 MiB at most). Those that do not fit are refused
 * with 503 E_OVERLOADED and Retry-After before their bytes arrive (declared length) or as soon as they would pass
 * it (chunked); none crashes the isolate, and every byte is given back afterwards. The lab's origin streams real
 * 25 MiB bodies over ~1 s so that the requests overlap.
 */
import { describe, expect, it } from 'vitest';
import { EDGE_INFLIGHT_MAX_BYTES } from '../../src/edge-inflight.js';
import type { Edge } from '../../src/edge.js';
import { EDGE, freshEdge, IMAGES, problemOf, unique, viaEdge } from './helpers.js';

const BIG_BYTES = 25 * 1024 * 1024 - 4096;
const CONCURRENCY = 4;

/** Runs `work` while sampling the edge's budget every few ms; the highest reservation seen. */
async function peakDuring<T>(edge: Edge, work: Promise<T>): Promise<{ result: T; peak: number }> {
  let peak = 0;
  const timer = setInterval(() => void (peak = Math.max(peak, edge.budget.usedBytes)), 2);
  try {
    const result = await work;
    return { result, peak: Math.max(peak, edge.budget.usedBytes) };
  } finally {
    clearInterval(timer);
  }
}

interface Outcome {
  status: number;
  bytes?: number;
  code?: string;
  retryAfter?: string | null;
}

async function outcome(response: Response): Promise<Outcome> {
  if (response.status === 200) return { status: 200, bytes: (await response.arrayBuffer()).byteLength };
  const { code } = await problemOf(response);
  return { status: response.status, code, retryAfter: response.headers.get('retry-after') };
}

/** All of `paths` at once through one edge; their outcomes and the highest reservation seen meanwhile. */
const concurrently = (edge: Edge, paths: string[]) =>
  peakDuring(edge, Promise.all(paths.map(async (path) => outcome(await viaEdge(edge, path)))));

describe('bytes in flight per isolate', () => {
  for (const source of ['/big-declared.jpg', '/big-chunked.jpg']) {
    it(`${CONCURRENCY} concurrent 25 MiB relays (${source}): some 503, the rest whole, budget never passed`, async () => {
      const edge = freshEdge({ IMGRELAY_STORE: 'none' });
      expect(edge.budget.limitBytes).toBe(EDGE_INFLIGHT_MAX_BYTES);
      const paths = Array.from({ length: CONCURRENCY }, () => `/?${IMAGES}${source}?case=${unique('big')}`);
      const { result, peak } = await concurrently(edge, paths);
      const served = result.filter((r) => r.status === 200);
      const refused = result.filter((r) => r.status === 503);
      expect(served.length + refused.length).toBe(CONCURRENCY); // nothing else: no 500, no dropped connection
      expect(served.length).toBeGreaterThanOrEqual(1);
      expect(refused.length).toBeGreaterThanOrEqual(1);
      for (const r of served) expect(r.bytes).toBe(BIG_BYTES);
      for (const r of refused) expect(r).toMatchObject({ code: 'E_OVERLOADED', retryAfter: '2' });
      expect(peak).toBeLessThanOrEqual(edge.budget.limitBytes);
      expect(peak).toBeGreaterThan(BIG_BYTES / 2); // the sampling saw the relays in flight
      expect(edge.budget.usedBytes).toBe(0); // every hold was given back

      // The isolate is still fine: the next relay is served whole.
      const after = await outcome(await viaEdge(edge, `/?${IMAGES}${source}?case=${unique('after')}`));
      expect(after).toEqual({ status: 200, bytes: BIG_BYTES });
    });
  }

  it('with the Cache API and R2 on, a write holds its bytes until it ends, then gives them back', async () => {
    const edge = freshEdge();
    expect(edge.storeKind).toBe('cache-api+r2');
    const response = await edge.handle(new Request(`${EDGE}/?${IMAGES}/big-declared.jpg?case=${unique('big-stored')}`));
    expect(response.status).toBe(200);
    // The fetch's hold is released; the 25 MiB write to the Cache API and R2 (ctx.waitUntil) holds them now.
    expect(edge.budget.usedBytes).toBeGreaterThanOrEqual(BIG_BYTES);
    expect((await response.arrayBuffer()).byteLength).toBe(BIG_BYTES);
    await edge.settled();
    expect(edge.budget.usedBytes).toBe(0);
  });

  it('a forwarded transform\'s answer is held too: over the budget it is 503, not an unbounded read', async () => {
    const edge = freshEdge({ IMGRELAY_STORE: 'none', IMGRELAY_ORIGIN_URL: `${IMAGES}/big-origin`,
      IMGRELAY_MAX_INFLIGHT_MB: '30' });
    // The lab's stand-in origin answers every transform with a 25 MiB body, over ~1 s.
    const paths = Array.from({ length: 3 },
      () => `/?url=${encodeURIComponent(`${IMAGES}/photo.jpg?case=${unique('fwd')}`)}&w=100`);
    const { result, peak } = await concurrently(edge, paths);
    expect(result.map((r) => r.status).sort()).toContain(503);
    expect(result.every((r) => r.status === 200 || r.status === 503)).toBe(true);
    expect(peak).toBeLessThanOrEqual(30 * 1024 * 1024);
    expect(edge.budget.usedBytes).toBe(0);
  });
});
