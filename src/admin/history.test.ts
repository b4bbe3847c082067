/**
 * The dashboard's sampler over a real memory tier and a real PromMetrics fed as the image route feeds it: rates,
 * ratios and quantiles per interval, and the ring that never holds more than its capacity.
 */
import { describe, expect, it } from 'vitest';
import { MemoryTier } from '../cache/memory.js';
import { HISTORY_SAMPLES, History } from './history.js';
import { AdminJournal, JOURNAL_ENTRIES } from './journal.js';
import { PromMetrics } from './metrics.js';
import { Ring } from './ring.js';

const setup = () => {
  const memory = new MemoryTier({ maxBytes: 1024 * 1024, maxEntryBytes: 1024 * 1024, negativeTtlMs: 1000 });
  const metrics = new PromMetrics({ memory }, { defaultMetrics: false });
  let now = 1_000_000;
  const history = new History({ metrics, memory, rss: () => 123, now: () => now });
  return { metrics, history, advance: (ms: number) => { now += ms; } };
};

describe('History', () => {
  it('turns the counts of one interval into rates, a hit ratio and hit/miss quantiles', () => {
    const { metrics, history, advance } = setup();
    for (let i = 0; i < 30; i += 1) metrics.request({ route: 'legacy', status: 200, cache: 'HIT-MEMORY', seconds: 0.0004, bytesOut: 10 });
    for (let i = 0; i < 10; i += 1) metrics.request({ route: 'legacy', status: 200, cache: 'MISS', seconds: 0.2, bytesOut: 10 });
    metrics.request({ route: 'error', status: 404, seconds: 0.01, bytesOut: 0 });
    metrics.originFetch('a.example', 100, 'ok', 0.1);
    metrics.originFetch('a.example', 0, 'error', 0.3);
    metrics.originFetch('b.example', 100, 'ok', 0.05);
    advance(5000);
    const sample = history.sample();
    expect(sample.intervalS).toBe(5);
    expect(sample.rps).toEqual({ 'HIT-MEMORY': 6, 'HIT-STORE': 0, MISS: 2, STALE: 0, errors: 0.2 });
    expect(sample.hitRatio).toBe(0.75);
    expect([sample.served, sample.hitRatioOverall]).toEqual([40, 0.75]);
    expect(sample.latencyMs.hitP95).toBeLessThan(0.5);
    expect(sample.latencyMs.missP50).toBeGreaterThanOrEqual(200);
    expect(sample.origin).toEqual({ fetchesPerS: 0.6, errorsPerS: 0.2, meanMs: 150, hosts: [
      { host: 'a.example', fetches: 2, errors: 1, meanMs: 200 }, { host: 'b.example', fetches: 1, errors: 0, meanMs: 50 }] });
    expect(sample.memory).toEqual({ bytes: 0, maxBytes: 1024 * 1024, entries: 0 });
    expect(sample.rssBytes).toBe(123);
    // The next interval saw nothing: zero rates, no ratio, no quantiles; the totals since start stay.
    advance(5000);
    const quiet = history.sample();
    expect(quiet.rps.MISS).toBe(0);
    expect([quiet.hitRatio, quiet.latencyMs.hitP50, quiet.origin.hosts.length, quiet.served]).toEqual([null, null, 0, 40]);
  });

  it('keeps at most 720 samples (an hour at 5 s), the newest, however long it runs', () => {
    const { metrics, history, advance } = setup();
    for (let i = 0; i < 2000; i += 1) {
      metrics.request({ route: 'query', status: 200, cache: 'MISS', seconds: 0.01, bytesOut: 1 });
      advance(5000);
      history.sample();
    }
    const samples = history.samples();
    expect(samples).toHaveLength(HISTORY_SAMPLES);
    expect(samples.at(-1)!.served).toBe(2000);
    expect(samples[0].served).toBe(2000 - HISTORY_SAMPLES + 1);
    expect(samples.every((s, i) => i === 0 || s.t - samples[i - 1].t === 5000)).toBe(true);
    // Each sample names at most 10 hosts, however many the origin fetches reached.
    for (let h = 0; h < 50; h += 1) metrics.originFetch(`h${h}.example`, 1, 'ok', 0.01);
    advance(5000);
    expect(history.sample().origin.hosts).toHaveLength(10);
  });

  it('lists only the samples newer than `since` (the page polls for what it lacks)', () => {
    const { history, advance } = setup();
    for (let i = 0; i < 5; i += 1) {
      advance(1000);
      history.sample();
    }
    const all = history.samples();
    expect(history.samples(all[2].t).map((s) => s.t)).toEqual([all[3].t, all[4].t]);
    expect(history.samples(all[4].t)).toEqual([]);
  });

  it('keeps origin totals for at most 200 hosts plus `other`, however many hosts articles name', () => {
    const { metrics } = setup();
    for (let h = 0; h < 1000; h += 1) metrics.originFetch(`host${h}.example`, 1, 'ok', 0.01);
    expect(metrics.originTotals.size).toBe(201);
    expect(metrics.originTotals.get('other')!.fetches).toBe(800);
  });
});

describe('History timer', () => {
  it('skips and reports a sample that fails instead of throwing from its timer', async () => {
    const memory = new MemoryTier({ maxBytes: 1024, maxEntryBytes: 1024, negativeTtlMs: 1000 });
    const metrics = new PromMetrics({ memory }, { defaultMetrics: false });
    let fail = true;
    const history = new History({ metrics, memory, rss: () => { if (fail) throw new Error('no /proc'); return 1; } });
    const errors: unknown[] = [];
    history.start(10, (error) => errors.push(error));
    try {
      await expect.poll(() => errors.length, { timeout: 5000 }).toBeGreaterThan(0);
      fail = false;
      await expect.poll(() => history.samples().length, { timeout: 5000 }).toBeGreaterThan(0);
    } finally {
      history.stop();
    }
    expect(String(errors[0])).toContain('no /proc');
  });
});

describe('Ring', () => {
  it('overwrites the oldest past its capacity and lists oldest first', () => {
    const ring = new Ring<number>(3);
    for (let i = 1; i <= 7; i += 1) ring.push(i);
    expect([ring.size, ring.toArray(), ring.last()]).toEqual([3, [5, 6, 7], 7]);
    expect(() => new Ring(0)).toThrow(RangeError);
  });
});

describe('AdminJournal', () => {
  it('keeps the last 50 purges and warm jobs, newest first, with per-tier results', () => {
    const journal = new AdminJournal();
    for (let i = 0; i < 60; i += 1) {
      journal.warmed('tok', { total: 2, ok: 1, failed: 1, results: [
        { url: `http://a.example/${i}.png`, status: 200, cache: 'MISS', bytes: 5 },
        { url: 'http://a.example/gone.png', status: 404, code: 'E_SOURCE_NOT_FOUND' }] }, i);
    }
    const warms = journal.warms();
    expect(warms).toHaveLength(JOURNAL_ENTRIES);
    expect(warms[0]).toEqual({ at: 59, tokenId: 'tok', total: 2, ok: 1, failed: 1, byCache: { MISS: 1 },
      failures: [{ url: 'http://a.example/gone.png', code: 'E_SOURCE_NOT_FOUND' }] });
  });
});
