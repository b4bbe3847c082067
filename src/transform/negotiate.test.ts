import { describe, expect, it } from 'vitest';
import { acceptBucket, dependsOnAccept, familyDependsOnAlpha, resolveOutput } from './negotiate.js';
import type { ImageFormat, OutputFormat } from './types.js';

/** Image request Accept headers as the browsers send them. */
const BROWSERS = {
  chromium: 'image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8',
  chromiumJxl: 'image/jxl,image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8',
  firefox: 'image/avif,image/webp,image/png,image/svg+xml,image/*;q=0.8,*/*;q=0.5',
  safari: 'image/webp,image/avif,image/jxl,image/heic,image/heic-sequence,video/*;q=0.8,image/png,image/svg+xml,image/*;q=0.8,*/*;q=0.5',
  oldSafari: 'image/webp,image/png,image/svg+xml,image/*;q=0.8,video/*;q=0.8,*/*;q=0.5',
  curl: '*/*',
};

describe('acceptBucket', () => {
  it.each([
    ['chromium', 'avif'], ['chromiumJxl', 'avif'], ['firefox', 'avif'], ['safari', 'avif'], ['oldSafari', 'webp'], ['curl', 'base'],
  ] as const)('%s → %s', (browser, bucket) => expect(acceptBucket(BROWSERS[browser])).toBe(bucket));

  it('no header or wildcards only → base', () => {
    expect(acceptBucket(undefined)).toBe('base');
    expect(acceptBucket('')).toBe('base');
    expect(acceptBucket('image/*')).toBe('base');
  });

  it('q=0 means "not acceptable"', () => {
    expect(acceptBucket('image/avif;q=0,image/webp,*/*')).toBe('webp');
    expect(acceptBucket('image/avif;q=0, image/webp;q=0, */*')).toBe('base');
    expect(acceptBucket('image/avif; q=0.0')).toBe('base');
  });

  it('the higher q wins; AVIF on a tie; whitespace and case do not matter', () => {
    expect(acceptBucket('image/avif;q=0.5,image/webp;q=0.9')).toBe('webp');
    expect(acceptBucket('image/webp;q=0.7, image/avif;q=0.7')).toBe('avif');
    expect(acceptBucket(' Image/AVIF ; Q=0.9 , image/webp;q=0.8')).toBe('avif');
  });

  it('malformed q values count as not acceptable rather than throwing', () => {
    expect(acceptBucket('image/avif;q=abc,image/webp')).toBe('webp');
    expect(acceptBucket(',,;;,')).toBe('base');
  });
});

describe('resolveOutput', () => {
  it('an explicit format wins over Accept and the source', () => {
    expect(resolveOutput({ format: 'png' }, 'avif', 'jpeg')).toBe('png');
    expect(resolveOutput({ format: 'avif' }, 'base', 'gif')).toBe('avif');
  });

  it('auto follows the bucket, else the source family', () => {
    expect(resolveOutput({ format: 'auto' }, 'avif', 'jpeg')).toBe('avif');
    expect(resolveOutput({ format: 'auto' }, 'webp', 'png')).toBe('webp');
    expect(resolveOutput({ format: 'auto' }, 'base', 'png')).toBe('png');
    expect(resolveOutput({ format: 'auto' }, 'base', 'tiff')).toBe('jpeg');
  });

  it('auto with a kept animation goes to WebP (sharp encodes no animated AVIF)', () => {
    expect(resolveOutput({ format: 'auto', pages: -1 }, 'avif', 'gif')).toBe('webp');
    expect(resolveOutput({ format: 'auto', pages: -1 }, 'base', 'gif')).toBe('gif');
    expect(resolveOutput({ format: 'auto' }, 'avif', 'gif')).toBe('avif');
  });

  const family: [ImageFormat, boolean | undefined, OutputFormat][] = [
    ['jpeg', undefined, 'jpeg'], ['png', undefined, 'png'], ['webp', undefined, 'webp'], ['gif', undefined, 'gif'],
    ['avif', undefined, 'avif'], ['svg', undefined, 'png'], ['tiff', false, 'jpeg'], ['tiff', true, 'png'],
    ['heif', undefined, 'jpeg'], ['heif', true, 'png'], ['bmp', false, 'jpeg'],
  ];
  it.each(family)('absent format: %s (alpha %s) → %s', (source, alpha, out) =>
    expect(resolveOutput({ width: 10 }, 'avif', source, alpha)).toBe(out));

  it('only auto depends on Accept (Vary: Accept exactly then)', () => {
    expect(dependsOnAccept({ format: 'auto' })).toBe(true);
    expect(dependsOnAccept({ format: 'webp' })).toBe(false);
    expect(dependsOnAccept({ width: 10 })).toBe(false);
  });

  it('knows when the source alpha can still change a family choice', () => {
    expect(familyDependsOnAlpha({}, 'tiff', 'jpeg')).toBe(true);
    expect(familyDependsOnAlpha({ format: 'auto' }, 'tiff', 'jpeg')).toBe(true);
    expect(familyDependsOnAlpha({ format: 'jpeg' }, 'tiff', 'jpeg')).toBe(false);
    expect(familyDependsOnAlpha({}, 'png', 'png')).toBe(false);
  });
});
