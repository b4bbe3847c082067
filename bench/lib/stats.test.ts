import { describe, expect, it } from 'vitest';
import { lastThirdGrowth } from '../workloads/memory.js';
import { shorten } from './cpuprofile.js';
import { fmtRatioRange, type Target, targetsTable } from './report.js';
import { median, pairedRatio, pairedRatios, percentile, ratio, spread } from './stats.js';

describe('stats', () => {
  it('takes medians and interpolated percentiles', () => {
    expect(median([5, 1, 3])).toBe(3);
    expect(median([1, 2, 3, 4])).toBe(2.5);
    expect(percentile([10, 20, 30, 40, 50], 90)).toBe(46);
    expect(median([])).toBeNaN();
  });

  it('pairs ratios by round, so a slow round slows both sides alike', () => {
    // Round 2 ran at half speed for both contenders: per-round ratios are both 0.5.
    expect(pairedRatio([50, 25], [100, 50])).toBe(0.5);
    expect(ratio(1, 0)).toBeNaN();
  });

  it('keeps the range of the per-round ratios beside their median', () => {
    const ratios = pairedRatios([90, 80, 99], [100, 100, 100]);
    expect(spread(ratios)).toEqual({ median: 0.9, low: 0.8, high: 0.99 });
    expect(fmtRatioRange(0.9, [0.8, 0.99])).toBe('0.90× (0.80–0.99)');
    expect(fmtRatioRange(0.9, [0.9, 0.9])).toBe('0.90×');
    // A round where one side failed (NaN) is left out rather than widening the range to n/a.
    expect(spread(pairedRatios([90, Number.NaN], [100, 100]))).toEqual({ median: 0.9, low: 0.9, high: 0.9 });
  });
});

describe('soak verdict', () => {
  it('sees RSS that levels off and RSS that keeps growing', () => {
    expect(lastThirdGrowth([100, 200, 250, 255, 256, 256])).toBeCloseTo(0.004, 3);
    expect(lastThirdGrowth([100, 150, 200, 250, 300, 350])).toBeGreaterThan(0.3);
  });
});

describe('profile locations', () => {
  it('names packages and project files briefly', () => {
    expect(shorten('file:///work/main/node_modules/hono/dist/hono.js')).toBe('hono/dist/hono.js');
    expect(shorten('file:///work/main/src/images.ts')).toBe('src/images.ts');
    expect(shorten('file:///work/main/dist/bench/src/cache/memory.js')).toBe('src/cache/memory.js');
    expect(shorten('file:///work/main/dist/bench/bench/servers/ipc.js')).toBe('bench/servers/ipc.js');
  });
});

describe('summary verdicts', () => {
  const target = (pass: boolean, bound?: Target['bound']): Target =>
    ({ workload: 'cold miss', name: 'vs raw sharp', value: 0.8, threshold: '≥ 0.90×', pass, bound });
  const verdictOf = (t: Target) => targetsTable([t]).rows[0].at(-1);

  it('says a miss is out of reach only when the same run\'s bound misses the threshold too', () => {
    expect(verdictOf(target(false, { value: 0.85, by: 'the I/O floor', pass: false }))).toBe('MISS (out of reach here)');
    expect(verdictOf(target(false, { value: 0.95, by: 'the I/O floor', pass: true }))).toBe('MISS');
    expect(verdictOf(target(false))).toBe('MISS');
    expect(verdictOf(target(true, { value: 0.85, by: 'the I/O floor', pass: false }))).toBe('PASS');
  });

  it('shows the bound and what reached it beside the measurement', () => {
    expect(targetsTable([target(false, { value: 0.85, by: 'the I/O floor', pass: false })]).rows[0][4])
      .toBe('0.85× (the I/O floor)');
    expect(targetsTable([target(true)]).rows[0][4]).toBe('—');
  });
});
