import { describe, expect, it } from 'vitest';
import { capOutputSize } from './output-limit.js';
import { canonicalSpec } from './options.js';
import { boundedBox } from '../transform/plan.js';
import type { TransformSpec } from '../transform/types.js';

const MAX = 4096;

describe('capOutputSize: a size over IMGRELAY_MAX_OUTPUT_DIMENSION keys as the cap', () => {
  it('one side only, or inside/outside: each side capped, so w=9000 and w=4096 are one key', () => {
    expect(canonicalSpec(capOutputSize({ width: 9000 }, MAX))).toBe(canonicalSpec({ width: MAX }));
    expect(capOutputSize({ width: 5000, height: 300 }, MAX)).toEqual({ width: MAX, height: 300 });
    expect(capOutputSize({ height: 3000, dpr: 2 }, MAX)).toEqual({ height: MAX });
  });

  it('a box-filling fit keeps the box aspect, as the pipeline did', () => {
    expect(capOutputSize({ width: 5000, height: 300, fit: 'cover' }, MAX)).toEqual({ width: MAX, height: 245, fit: 'cover' });
    expect(capOutputSize({ width: 8192, height: 8192, fit: 'contain' }, MAX)).toEqual({ width: MAX, height: MAX, fit: 'contain' });
  });

  it('leaves a spec within the cap untouched (the same object)', () => {
    const spec: TransformSpec = { width: 300, dpr: 2 };
    expect(capOutputSize(spec, MAX)).toBe(spec);
  });

  // The pipeline receives the capped spec and still clamps the side the request did not name (that depends on the
  // source): the box it plans must be the one it planned for the uncapped request (± the float rounding).
  it.each<[TransformSpec, { width: number; height: number }]>([
    [{ width: 9000 }, { width: 1000, height: 500 }],
    [{ width: 9000 }, { width: 500, height: 1000 }],
    [{ width: 5000, height: 300, fit: 'cover' }, { width: 800, height: 600 }],
    [{ width: 5000, height: 9000, fit: 'fill' }, { width: 800, height: 600 }],
    [{ height: 7000, dpr: 3 }, { width: 640, height: 480 }],
  ])('%j on a %j source plans the box the uncapped request planned', (spec, source) => {
    const capped = capOutputSize(spec, MAX);
    const before = boundedBox(spec, source, MAX).box;
    const after = boundedBox(capped, source, MAX).box;
    for (const side of ['width', 'height'] as const) {
      if (before[side] === undefined) continue;
      expect(Math.abs(after[side]! - before[side]!)).toBeLessThanOrEqual(1);
    }
  });
});
