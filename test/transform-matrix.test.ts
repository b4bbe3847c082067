/**
 * The sharp pipeline against the corpus (test/fixtures) and generated fixtures: dimensions, format, orientation,
 * 8-bit sRGB, ICC conversion (by pixel similarity to an independent reference, never bytes), alpha, animation.
 */
import sharp from 'sharp';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  MARKER_CORNER, animatedWebp, avifWithAlpha, fixture, inspect, meanDiffFromReference, orientedJpeg,
  parseMatrixProfile, rawPixels, redCorner, testTransformer, transformWith, cornerColour,
} from './helpers/images.js';
import type { Transformer } from '../src/transform/types.js';

let transformer: Transformer;
beforeAll(() => {
  transformer = testTransformer();
});

const run = (name: string | Uint8Array, options: string, accept?: string) =>
  transformWith(transformer, typeof name === 'string' ? fixture(name) : name, options, accept);

describe('corpus matrix: size, format, 8-bit sRGB', () => {
  const cases: [string, string, { format: string; width: number; height: number }][] = [
    ['photo-wood.jpg', 'w=800', { format: 'jpeg', width: 800, height: 600 }],
    ['photo-ladybird.jpg', 'w=400&h=400&fit=cover&output=webp', { format: 'webp', width: 400, height: 400 }],
    ['progressive.jpg', 'h=300&output=png', { format: 'png', width: 450, height: 300 }],
    ['abstract-flow.png', 'w=320&output=avif', { format: 'heif', width: 320, height: 200 }],
    ['palette-alpha.png', 'w=64', { format: 'png', width: 64, height: 64 }],
    ['rgba.tiff', 'w=24', { format: 'png', width: 24, height: 24 }],
    ['icc-odd.jpg', 'w=24&output=jpg', { format: 'jpeg', width: 24, height: 24 }],
    ['logo.svg', 'w=400', { format: 'png', width: 400, height: 130 }],
    ['sample.avif', 'w=46', { format: 'heif', width: 46, height: 84 }],
    ['sample.webp', 'h=21', { format: 'webp', width: 12, height: 21 }],
    ['tiny-256-lossy.webp', 'w=100&output=gif', { format: 'gif', width: 100, height: 100 }],
    ['exif-orientation-6.jpg', 'w=214', { format: 'jpeg', width: 214, height: 320 }],
    ['photo-wood.jpg', 'w=200&dpr=2', { format: 'jpeg', width: 400, height: 300 }],
    ['photo-wood.jpg', 'w=300&h=100&fit=fill', { format: 'jpeg', width: 300, height: 100 }],
    ['photo-wood.jpg', 'w=300&h=300&fit=contain', { format: 'jpeg', width: 300, height: 300 }],
    ['photo-wood.jpg', 'w=300&h=300&fit=outside', { format: 'jpeg', width: 400, height: 300 }],
    ['sample.webp', 'w=100&we', { format: 'webp', width: 23, height: 42 }],
  ];

  it.each(cases)('%s ?%s', async (name, options, expected) => {
    const result = await run(name, options);
    const seen = await inspect(result.body);
    expect(seen).toMatchObject({ ...expected, depth: 'uchar', space: 'srgb' });
    expect([result.width, result.height]).toEqual([expected.width, expected.height]);
    expect(result.contentType).toBe(`image/${result.format}`);
  });

  it('16-bit input comes out 8-bit', async () => {
    expect(await inspect((await run('rgb16-rec2020.png', 'w=32')).body)).toMatchObject({ depth: 'uchar', space: 'srgb' });
  });

  it('output=auto follows the Accept bucket', async () => {
    const chromium = 'image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8';
    expect((await run('photo-wood.jpg', 'w=100&output=auto', chromium)).format).toBe('avif');
    expect((await run('photo-wood.jpg', 'w=100&output=auto', 'image/webp,*/*')).format).toBe('webp');
    expect((await run('photo-wood.jpg', 'w=100&output=auto', '*/*')).format).toBe('jpeg');
  });

  it('quality changes the bytes the way a user expects (lower q, smaller file)', async () => {
    const low = await run('photo-ladybird.jpg', 'w=600&q=30');
    const high = await run('photo-ladybird.jpg', 'w=600&q=95');
    expect(low.body.byteLength).toBeLessThan(high.body.byteLength * 0.6);
  });

  it('strips metadata by default and keeps EXIF with metadata=keep (orientation applied either way)', async () => {
    const source = await orientedJpeg(6);
    const stripped = await inspect((await run(source, 'w=40')).body);
    expect(stripped.hasExif).toBe(false);
    const spec = { width: 40, keepMetadata: true };
    const kept = await transformer.transform({ source, sourceFormat: 'jpeg', spec, output: 'jpeg' });
    const seen = await inspect(kept.body);
    expect(seen.hasExif).toBe(true);
    expect(seen.orientation ?? 1).toBe(1);
    expect(redCorner(await rawPixels(kept.body))).toBe('top-right');
  });
});

describe('EXIF orientation 1–8: the marker corner lands where the tag says', () => {
  it.each([1, 2, 3, 4, 5, 6, 7, 8])('orientation %i', async (orientation) => {
    const result = await run(await orientedJpeg(orientation), 'w=60&output=png');
    const pixels = await rawPixels(result.body);
    const upright = orientation >= 5 ? { width: 60, height: 90 } : { width: 60, height: 40 };
    expect({ width: pixels.width, height: pixels.height }).toEqual(upright);
    expect(redCorner(pixels)).toBe(MARKER_CORNER[orientation]);
  });
});

describe('wide-gamut ICC is converted to sRGB, not just re-tagged', () => {
  // Threshold: a correct conversion lands within ~1 level of the hand-computed reference (lcms vs float maths,
  // resampling, JPEG/PNG rounding); serving the source values unconverted is 27–55 levels off.
  it.each([
    ['display-p3.png', 'output=png', 2],
    ['display-p3.png', 'output=webp&q=100', 4],
    ['rgb16-rec2020.png', 'output=png', 2],
    ['display-p3.png', 'output=png&keep', 2],
  ])('%s ?%s', async (name, options, threshold) => {
    const meta = await sharp(fixture(name)).metadata();
    const profile = parseMatrixProfile(meta.icc!);
    const sixteen = meta.depth === 'ushort';
    const source = await rawPixels(fixture(name), { ignoreIcc: true, depth: sixteen ? 'ushort' : 'uchar' });
    const spec = { ...(options.includes('webp') ? { format: 'webp' as const, quality: 100 } : { format: 'png' as const }),
      keepMetadata: options.endsWith('keep') };
    const result = await transformer.transform({ source: fixture(name), sourceFormat: 'png', spec, output: spec.format });
    const output = await rawPixels(result.body);
    expect(meanDiffFromReference(output, source, sixteen ? 65535 : 255, profile)).toBeLessThan(threshold);
    // Sanity of the yardstick: the unconverted values are far from the reference.
    const unconverted = await rawPixels(fixture(name), { ignoreIcc: true });
    expect(meanDiffFromReference(unconverted, source, sixteen ? 65535 : 255, profile)).toBeGreaterThan(20);
  });
});

describe('alpha: kept where the format allows, flattened otherwise', () => {
  const transparentCorner = async (body: Uint8Array) => {
    const raw = await rawPixels(body);
    return { channels: raw.channels, alpha: raw.channels === 4 ? raw.data[3] : 255, rgb: cornerColour(raw, 'top-left', 1) };
  };

  it.each(['png', 'webp', 'avif'])('palette-alpha.png → %s keeps transparency', async (format) => {
    const result = await run('palette-alpha.png', `w=64&output=${format}`);
    expect(await inspect(result.body)).toMatchObject({ hasAlpha: true });
    // Lossy AVIF coding leaves the alpha plane within a few levels of 0; visually transparent.
    expect((await transparentCorner(result.body)).alpha).toBeLessThanOrEqual(format === 'avif' ? 8 : 0);
  });

  it('→ jpeg flattens onto white, or onto bg', async () => {
    const white = await transparentCorner((await run('palette-alpha.png', 'w=64&output=jpg')).body);
    expect(white.channels).toBe(3);
    expect(Math.min(...white.rgb)).toBeGreaterThan(240);
    const red = await transparentCorner((await run('palette-alpha.png', 'w=64&output=jpg&bg=ff0000')).body);
    expect(red.rgb[0]).toBeGreaterThan(230);
    expect(red.rgb[1]).toBeLessThan(25);
  });

  it('→ jpeg pads an opaque photo with fit=contain in white, or in bg, never black', async () => {
    const white = await transparentCorner((await run('photo-wood.jpg', 'w=300&h=300&fit=contain&output=jpg')).body);
    const red = await transparentCorner((await run('photo-wood.jpg', 'w=300&h=300&fit=contain&output=jpg&bg=ff0000')).body);
    expect(white.channels).toBe(3);
    expect(Math.min(...white.rgb)).toBeGreaterThan(240);
    expect(red.rgb[0]).toBeGreaterThan(230);
    expect(red.rgb[1]).toBeLessThan(25);
  });

  it('a generated AVIF with alpha stays transparent in WebP', async () => {
    const result = await run(await avifWithAlpha(), 'output=webp');
    const raw = await rawPixels(result.body);
    // Lossy codecs may move alpha by a level or two: transparent is "near 0", opaque "near 255".
    expect(raw.data[(raw.width - 1) * 4 + 3]).toBeLessThan(8);
    expect(raw.data[3]).toBeGreaterThan(247);
  });
});

describe('animation: kept for n=-1 into webp/gif, dropped otherwise', () => {
  it.each([
    ['animated-aero.gif', 'n=-1&output=webp&w=100', 56],
    ['animated-aero.gif', 'n=-1&w=100', 56],
    ['animated-alpha.gif', 'n=-1&output=webp', 4],
    ['animated-aero.gif', 'n=3&output=webp&w=100', 3],
    ['animated-aero.gif', 'n=-1&output=jpg&w=100', 1],
    ['animated-aero.gif', 'n=-1&output=png&w=100', 1],
    ['animated-aero.gif', 'output=webp&w=100', 1],
    ['animated-aero.gif', 'w=100', 1],
  ])('%s ?%s → %i frame(s)', async (name, options, pages) => {
    const seen = await inspect((await run(name, options)).body);
    expect(seen.pages).toBe(pages);
  });

  it('cover-cropping an animation keeps it animated at the cropped size', async () => {
    const result = await run('animated-aero.gif', 'n=-1&output=webp&w=50&h=50&fit=cover');
    const seen = await inspect(result.body);
    // libwebp merges frames that became identical after the crop, so only "still animated" is promised.
    expect(seen.pages).toBeGreaterThan(1);
    expect(seen).toMatchObject({ width: 50, height: 50 });
  });

  it('a generated animated WebP → animated GIF, frame size kept', async () => {
    const result = await run(await animatedWebp(5), 'n=-1&output=gif');
    expect(await inspect(result.body)).toMatchObject({ format: 'gif', pages: 5, width: 64, height: 48 });
    expect([result.width, result.height]).toEqual([64, 48]);
  });

  it('an animation over the frames × pixels budget falls back to its first frame', async () => {
    const small = testTransformer({ IMGRELAY_MAX_ANIMATION_PIXELS: String(350 * 189 * 10) });
    const result = await transformWith(small, fixture('animated-aero.gif'), 'n=-1&output=webp');
    expect(await inspect(result.body)).toMatchObject({ pages: 1, width: 350, height: 189 });
  });

  it('the frames keep their own content (not one frame repeated)', async () => {
    const result = await run(await animatedWebp(3), 'n=-1&output=webp');
    const first = await sharp(result.body, { page: 0 }).raw().toBuffer();
    const last = await sharp(result.body, { page: 2 }).raw().toBuffer();
    expect(first.equals(last)).toBe(false);
  });
});

describe('output dimension limit', () => {
  it('a box over IMGRELAY_MAX_OUTPUT_DIMENSION is clamped, keeping its aspect ratio', async () => {
    const limited = testTransformer({ IMGRELAY_MAX_OUTPUT_DIMENSION: '500' });
    const wide = await transformWith(limited, fixture('photo-wood.jpg'), 'w=2000');
    expect([wide.width, wide.height]).toEqual([500, 375]);
    const box = await transformWith(limited, fixture('photo-wood.jpg'), 'w=1000&h=800&fit=fill');
    expect([box.width, box.height]).toEqual([500, 400]);
    const tall = await transformWith(limited, fixture('exif-orientation-6.jpg'), 'w=428');
    expect(Math.max(tall.width, tall.height)).toBeLessThanOrEqual(500);
  });

  it('a request without a size still never exceeds it', async () => {
    const limited = testTransformer({ IMGRELAY_MAX_OUTPUT_DIMENSION: '500' });
    const result = await transformWith(limited, fixture('photo-wood.jpg'), 'output=webp');
    expect([result.width, result.height]).toEqual([500, 375]);
  });
});
