/**
 * GET /stats and GET /metrics after real traffic: tier sizes, hit ratios, queues and breaker in JSON; request,
 * stage-latency, origin, byte, queue, store-error and purge series in the Prometheus text format.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningNode } from '../src/node.js';
import { ZAKER, bootImgrelay, zakerAt } from './helpers/imgrelay.js';
import { type TestOrigin, startOrigin } from './helpers/origin.js';
import { TOKEN_A, adminFetch, fetchImage, purge, solidPng } from './helpers/admin.js';

let origin: TestOrigin;
let node: RunningNode;
let dir: string;

beforeAll(async () => {
  origin = await startOrigin();
  origin.serve('/s.png', await solidPng('#336699', 64, 48), 'image/png');
  dir = await mkdtemp(join(tmpdir(), 'imgrelay-stats-'));
  node = await bootImgrelay({ ...zakerAt(origin.port), IMGRELAY_STORE: 'fs', IMGRELAY_CACHE_DIR: dir,
    IMGRELAY_ADMIN_TOKENS: TOKEN_A });
  const legacy = `${node.url}/?http://${ZAKER}/s.png`;
  expect((await fetchImage(legacy)).cache).toBe('MISS');
  expect((await fetchImage(legacy)).cache).toBe('HIT-MEMORY');
  expect((await fetchImage(legacy)).cache).toBe('HIT-MEMORY');
  expect((await fetchImage(`${node.url}/?url=${encodeURIComponent(`http://${ZAKER}/s.png`)}&w=32`)).cache).toBe('MISS');
  expect((await fetchImage(`${node.url}/?http://${ZAKER}/none.png`)).status).toBe(404);
  await node.store!.writes.drain(10_000);
});
afterAll(async () => {
  await node.close();
  await origin.close();
  await rm(dir, { recursive: true, force: true });
});

describe('GET /stats', () => {
  it('reports tiers, hit ratios, queues and the breaker as JSON', async () => {
    const response = await adminFetch(node, '/stats');
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^application\/json/);
    expect(response.headers.get('cache-control')).toBe('no-store');
    const stats = await response.json() as Record<string, any>;
    expect(stats.memory).toMatchObject({ entries: 2, negativeEntries: 1 });
    expect(stats.memory.bytes).toBeGreaterThan(0);
    expect(stats.store).toMatchObject({ kind: 'fs', entries: 2, breaker: 'closed', errors: 0,
      writes: { queued: 0, written: 2, dropped: 0 } });
    expect(stats.store.bytes).toBeGreaterThan(0);
    expect(stats.requests).toMatchObject({ served: 4, errors: 1,
      byCache: { 'HIT-MEMORY': 2, 'HIT-STORE': 0, MISS: 2, STALE: 0 },
      hitRatio: { memory: 0.5, store: 0, overall: 0.5 } });
    expect(stats.transform).toMatchObject({ queued: 0, running: 0, rejected: 0 });
    expect(stats.transform.completed).toBeGreaterThanOrEqual(1);
    expect(stats.purgeLog).toMatchObject({ pollMs: 2000 });
    expect(stats.purgeFence).toEqual({ purges: 0, inFlight: 0, fenced: { memory: 0, write: 0, promotion: 0, read: 0 } });
  });
});

describe('GET /metrics', () => {
  it('exposes requests, stage latencies, origin fetches, bytes, queues, store errors and purges', async () => {
    await purge(node, { urls: [`http://${ZAKER}/s.png`] });
    const response = await adminFetch(node, '/metrics');
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(response.headers.get('cache-control')).toBe('no-store');
    const text = await response.text();
    const value = (series: string) => {
      const line = text.split('\n').find((l) => l.startsWith(`${series} `));
      return line === undefined ? undefined : Number(line.slice(series.length + 1));
    };
    expect(value('imgrelay_requests_total{route="legacy",status="200",cache="MISS"}')).toBe(1);
    expect(value('imgrelay_requests_total{route="legacy",status="200",cache="HIT-MEMORY"}')).toBe(2);
    expect(value('imgrelay_requests_total{route="query",status="200",cache="MISS"}')).toBe(1);
    expect(value('imgrelay_requests_total{route="error",status="404",cache="none"}')).toBe(1);
    expect(value('imgrelay_request_duration_seconds_count{route="legacy",cache="MISS"}')).toBe(1);
    expect(value('imgrelay_request_duration_seconds_count{route="legacy",cache="HIT-MEMORY"}')).toBe(2);
    expect(value('imgrelay_stage_duration_seconds_count{stage="fetch",op=""}')).toBe(2);
    expect(value('imgrelay_stage_duration_seconds_count{stage="transform",op=""}')).toBe(1);
    expect(value('imgrelay_stage_duration_seconds_count{stage="store",op="get"}')).toBeGreaterThanOrEqual(2);
    expect(value(`imgrelay_origin_fetches_total{host="${ZAKER}",outcome="ok"}`)).toBe(1);
    expect(value(`imgrelay_origin_fetches_total{host="${ZAKER}",outcome="error"}`)).toBe(1);
    expect(value('imgrelay_origin_bytes_total')).toBeGreaterThan(0);
    expect(value('imgrelay_response_bytes_total')).toBeGreaterThan(0);
    expect(value('imgrelay_transform_queue_depth')).toBe(0);
    expect(value('imgrelay_store_write_queue')).toBe(0);
    expect(value('imgrelay_store_errors_total')).toBe(0);
    expect(value('imgrelay_store_breaker_open')).toBe(0);
    expect(value('imgrelay_purges_total{selector="urls"}')).toBe(1);
    expect(value('imgrelay_purge_fenced_total')).toBe(0); // nothing was in flight across that purge
    expect(text).toContain('imgrelay_process_resident_memory_bytes');
  });
});

describe('GET /history purges', () => {
  it('a purge naming 1000 hosts is kept as the first 10 and a count: the journal (50 purges) and the log line stay small', async () => {
    const hosts = Array.from({ length: 1000 }, (_, i) => `h${i}.purge-test.example`);
    await purge(node, { hosts });
    const history = await (await adminFetch(node, '/history')).json() as { purges: Array<{ selectors: { hosts: string[] } }> };
    expect(history.purges[0].selectors.hosts).toEqual([...hosts.slice(0, 10), '… 990 more']);
    expect(JSON.stringify(history.purges[0]).length).toBeLessThan(2_000);
  });
});
