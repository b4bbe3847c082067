/**
 * Animations × every fit × every gravity, on a real animated GIF (fixture) and an animated WebP (generated with sharp).
 * libvips has no smart crop and no 90° rotation for multi-page images: before, `gravity=attention|entropy` with
 * `fit=cover` and EXIF orientations 5–8 failed inside sharp and were remembered as invalid images. Now the smart crop
 * falls back to the centre of every frame, and an animation with orientation 5–8 is served as its first frame, upright.
 */
import sharp from 'sharp';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Transformer } from '../src/transform/types.js';
import { animatedWebp, fixture, inspect, testTransformer, transformWith } from './helpers/images.js';

let transformer: Transformer;
let webp: Uint8Array;
beforeAll(async () => {
  transformer = testTransformer();
  webp = await animatedWebp(5);
});

const FITS = ['cover', 'contain', 'fill', 'inside', 'outside'] as const;
/** weserv `a=`: positions and the smart crops. */
const GRAVITIES = ['center', 'top-left', 'bottom-right', 'attention', 'entropy'] as const;

describe.each([
  ['animated GIF (animated-aero.gif, 56 frames)', () => fixture('animated-aero.gif'), 'gif'],
  ['animated WebP (5 frames, generated)', () => webp, 'webp'],
] as const)('%s', (_label, source, format) => {
  it.each(FITS.flatMap((fit) => GRAVITIES.map((gravity) => [fit, gravity] as const)))(
    'fit=%s gravity=%s keeps the animation at the requested size', async (fit, gravity) => {
      const result = await transformWith(transformer, source(), `w=40&h=40&fit=${fit}&a=${gravity}&n=-1`);
      const seen = await inspect(result.body);
      expect(seen.format).toBe(format);
      expect(seen.pages).toBeGreaterThan(1);
      if (fit === 'cover' || fit === 'contain' || fit === 'fill') expect([seen.width, seen.height]).toEqual([40, 40]);
      if (fit === 'inside') expect(Math.max(seen.width!, seen.height!)).toBe(40);
      if (fit === 'outside') expect(Math.min(seen.width!, seen.height!)).toBe(40);
    });
});

describe('EXIF orientation on an animation', () => {
  it.each([5, 6, 7, 8])('orientation %i: the first frame, upright (width and height swapped), not an error', async (orientation) => {
    // 64×48 frames stored sideways: upright they are 48 wide and 64 tall.
    const tagged = new Uint8Array(await sharp(webp, { pages: -1 }).webp({ loop: 0 }).withMetadata({ orientation }).toBuffer());
    expect((await sharp(tagged).metadata()).orientation).toBe(orientation);
    const result = await transformWith(transformer, tagged, 'w=24&n=-1');
    const seen = await inspect(result.body);
    expect(seen.pages).toBe(1);
    expect([seen.width, seen.height]).toEqual([24, 32]);
  });

  it.each([2, 3, 4])('orientation %i (flips and half turns) keeps the animation', async (orientation) => {
    const tagged = new Uint8Array(await sharp(webp, { pages: -1 }).webp({ loop: 0 }).withMetadata({ orientation }).toBuffer());
    const seen = await inspect((await transformWith(transformer, tagged, 'w=32&n=-1')).body);
    expect(seen.pages).toBe(5);
    expect([seen.width, seen.height]).toEqual([32, 24]);
  });
});
