import { describe, expect, it } from 'vitest';
import { RelayError } from '../errors.js';
import { type CostInput, MAX_BLUR_SIGMA, checkAffordableOptions, estimateCost, overBudget, shrinkOnLoad } from './cost.js';

const BUDGET_MS = 1500;
const base: CostInput = {
  sourceFormat: 'jpeg', output: 'jpeg', frame: { width: 2000, height: 1500 }, outputSize: { width: 800, height: 600 },
  frames: 1, smartCrop: false, avifEffort: 0, gifEffort: 7,
};
const cost = (over: Partial<CostInput>) => estimateCost({ ...base, ...over }).ms;

describe('checkAffordableOptions', () => {
  it('refuses a blur sigma past the vectorised path with 400 naming the limit', () => {
    const error = (() => { try { checkAffordableOptions({ blur: 999.1 }); } catch (e) { return e; } })() as RelayError;
    expect(error).toBeInstanceOf(RelayError);
    expect(error.status).toBe(400);
    expect(error.detail).toContain(`limit of ${MAX_BLUR_SIGMA}`);
  });

  it('accepts the limit itself and every other option', () => {
    expect(() => checkAffordableOptions({ blur: MAX_BLUR_SIGMA, sharpen: 10, width: 4096 })).not.toThrow();
  });
});

describe('shrinkOnLoad', () => {
  it('JPEG shrinks by 8, 4 or 2 without going below the output; WebP by any factor; PNG not at all', () => {
    expect(shrinkOnLoad('jpeg', { width: 4000, height: 3000 }, { width: 400, height: 300 })).toBe(8);
    expect(shrinkOnLoad('jpeg', { width: 4000, height: 3000 }, { width: 1200, height: 900 })).toBe(2);
    expect(shrinkOnLoad('jpeg', { width: 100, height: 100 }, { width: 4096, height: 4096 })).toBe(1);
    expect(shrinkOnLoad('webp', { width: 3000, height: 3000 }, { width: 1000, height: 1000 })).toBe(3);
    expect(shrinkOnLoad('png', { width: 4000, height: 3000 }, { width: 400, height: 300 })).toBe(1);
  });
});

describe('estimateCost', () => {
  it('an ordinary 800w JPEG from a 3 MP photo costs a small fraction of the budget', () => {
    expect(cost({})).toBeLessThan(100);
  });

  it('a 1×1 PNG enlarged to 4096×4096 with blur 250 is over the budget (the issue\'s 32 s slot holder)', () => {
    const input = { ...base, sourceFormat: 'png' as const, frame: { width: 1, height: 1 },
      outputSize: { width: 4096, height: 4096 }, blur: 250 };
    const estimate = estimateCost(input);
    expect(estimate.ms).toBeGreaterThan(BUDGET_MS);
    expect(overBudget(input, estimate, BUDGET_MS).detail).toMatch(/JPEG output 4096x4096, blur 250\), over the limit of 1500 ms/);
  });

  it('counts output pixels × frames: 1,000 one-pixel frames at 400×400 cost 1,000 outputs', () => {
    const one = cost({ sourceFormat: 'gif', output: 'gif', frame: { width: 1, height: 1 }, outputSize: { width: 400, height: 400 } });
    const all = cost({ sourceFormat: 'gif', output: 'gif', frame: { width: 1, height: 1 }, outputSize: { width: 400, height: 400 }, frames: 1000 });
    expect(all).toBeCloseTo(one * 1000, 0);
    expect(all).toBeGreaterThan(BUDGET_MS);
  });

  it('orders encoders as measured: AVIF effort 4 ≫ GIF ≫ WebP > PNG > JPEG, and GIF effort 1 is cheaper than 7', () => {
    const big = { outputSize: { width: 2000, height: 2000 } };
    const by = (over: Partial<CostInput>) => cost({ ...big, ...over });
    expect(by({ output: 'avif', avifEffort: 4 })).toBeGreaterThan(by({ output: 'gif', gifEffort: 1 }));
    expect(by({ output: 'gif' })).toBeGreaterThan(by({ output: 'webp' }));
    expect(by({ output: 'webp' })).toBeGreaterThan(by({ output: 'png' }));
    expect(by({ output: 'png' })).toBeGreaterThan(by({ output: 'jpeg' }));
    expect(by({ output: 'gif', gifEffort: 1 })).toBeLessThan(by({ output: 'gif' }) / 5);
  });

  it('grows with blur sigma and sharpen sigma, and with a smart crop', () => {
    expect(cost({ blur: 100 })).toBeGreaterThan(cost({ blur: 10 }));
    expect(cost({ sharpen: 10 })).toBeGreaterThan(cost({ sharpen: 1 }));
    expect(cost({ smartCrop: true })).toBeGreaterThan(cost({}));
  });
});
