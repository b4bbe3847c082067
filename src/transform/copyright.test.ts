/** The EXIF copyright reader against EXIF that libvips itself wrote (sharp's withExif), and against garbage. */
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { copyrightOf, MAX_COPYRIGHT_CHARS } from './copyright.js';

async function exifWith(ifd0: Record<string, string>): Promise<Buffer> {
  const jpeg = await sharp({ create: { width: 8, height: 8, channels: 3, background: '#000' } })
    .withExif({ IFD0: ifd0 }).jpeg().toBuffer();
  return (await sharp(jpeg).metadata()).exif!;
}

describe('copyrightOf', () => {
  it('reads IFD0 Copyright, with or without the Exif\\0\\0 prefix', async () => {
    const exif = await exifWith({ Copyright: '(C) Jane Doe 2026', Make: 'Acme' });
    expect(copyrightOf(exif)).toBe('(C) Jane Doe 2026');
    expect(copyrightOf(exif.subarray(6))).toBe('(C) Jane Doe 2026'); // the TIFF header alone (as PNG eXIf holds it)
  });

  it('keeps nothing when there is no tag, an empty one, or one longer than a notice', async () => {
    expect(copyrightOf(undefined)).toBeUndefined();
    expect(copyrightOf(await exifWith({ Make: 'Acme' }))).toBeUndefined();
    expect(copyrightOf(await exifWith({ Copyright: '   ' }))).toBeUndefined();
    expect(copyrightOf(await exifWith({ Copyright: 'x'.repeat(MAX_COPYRIGHT_CHARS + 1) }))).toBeUndefined();
  });

  it('never throws on damaged EXIF: every truncation and byte flip answers a string or nothing', async () => {
    const exif = await exifWith({ Copyright: 'Jane Doe', Make: 'Acme', Model: 'X1' });
    for (let length = 0; length < exif.length; length += 1) {
      expect(['string', 'undefined']).toContain(typeof copyrightOf(exif.subarray(0, length)));
    }
    for (let at = 0; at < exif.length; at += 1) {
      const damaged = Buffer.from(exif);
      damaged[at] ^= 0xff;
      expect(['string', 'undefined']).toContain(typeof copyrightOf(damaged));
    }
  });
});
