import { describe, expect, it } from 'vitest';
import { type StageTimings, addStage, roundedStages, serverTiming, timeStage } from './stage-timings.js';

describe('stage timings', () => {
  it('writes the stages that ran, in a fixed order, into Server-Timing', () => {
    const timings: StageTimings = {};
    addStage(timings, 'transform', 40.06);
    addStage(timings, 'fetch', 12.34);
    addStage(timings, 'fetch', 1); // a redirect or a second load of the same request adds up
    expect(serverTiming('MISS', timings, 60)).toBe('cache;desc=MISS, fetch;dur=13.3, transform;dur=40.1, total;dur=60.0');
    expect(serverTiming('HIT-MEMORY', {}, 0.04)).toBe('cache;desc=HIT-MEMORY, total;dur=0.0');
    expect(roundedStages({ queue: 0.04, store: 2.25 })).toEqual({ queue: 0, store: 2.3 });
  });

  it('times a stage that fails too, and only when the request carries timings', async () => {
    const timings: StageTimings = {};
    await expect(timeStage(timings, 'store', () => new Promise((_, reject) => setTimeout(() => reject(new Error('x')), 20))))
      .rejects.toThrow('x');
    expect(timings.store).toBeGreaterThanOrEqual(15);
    expect(await timeStage(undefined, 'store', async () => 7)).toBe(7);
  });
});
