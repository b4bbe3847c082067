import { describe, expect, it } from 'vitest';
import { LatencyCounts, LatencyTally, bucketBoundMs } from './latency-tally.js';

describe('LatencyCounts', () => {
  it('finds p50 and p95 within one bucket (19 %) of the true values', () => {
    const counts = new LatencyCounts();
    for (let i = 1; i <= 1000; i += 1) counts.observe(i / 10); // 0.1 … 100 ms, evenly
    const p50 = counts.quantileSince(undefined, 0.5)!;
    const p95 = counts.quantileSince(undefined, 0.95)!;
    expect(p50).toBeGreaterThanOrEqual(50);
    expect(p50).toBeLessThanOrEqual(50 * 1.19);
    expect(p95).toBeGreaterThanOrEqual(95);
    expect(p95).toBeLessThanOrEqual(95 * 1.19);
  });

  it('measures only what came after an earlier copy, and says null when nothing did', () => {
    const counts = new LatencyCounts();
    for (let i = 0; i < 100; i += 1) counts.observe(500);
    const before = counts.copy();
    expect(counts.quantileSince(before, 0.5)).toBeNull();
    for (let i = 0; i < 10; i += 1) counts.observe(2);
    expect(counts.quantileSince(before, 0.95)).toBeLessThan(2.5);
    expect(counts.quantileSince(undefined, 0.5)).toBeGreaterThan(400);
  });

  it('stays the same size whatever it is fed: slow, instant and absurd latencies land in its end buckets', () => {
    const counts = new LatencyCounts();
    for (const ms of [0, -1, 0.001, 1e9, Number.MAX_VALUE]) counts.observe(ms);
    expect(counts.counts.length).toBe(81);
    expect(counts.counts[0]).toBe(3);
    expect(counts.counts[80]).toBe(2);
    expect(counts.quantileSince(undefined, 1)).toBeCloseTo(bucketBoundMs(80), 0);
  });
});

describe('LatencyTally', () => {
  it('keeps hits (stale answers too: served at once) and misses apart; errors count in neither', () => {
    const tally = new LatencyTally();
    tally.observe('HIT-MEMORY', 0.0002);
    tally.observe('HIT-STORE', 0.002);
    tally.observe('MISS', 0.3);
    tally.observe('STALE', 0.001);
    tally.observe(undefined, 1);
    expect([tally.hits.total, tally.misses.total]).toEqual([3, 1]);
  });
});
