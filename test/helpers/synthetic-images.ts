/**
 * Images made in the test (sharp writes them; libvips writes their EXIF) for test/cloudflare-compat.test.ts, and a
 * reader for the EXIF a response carries.
 */
import exifReader from 'exif-reader';
import sharp, { type Metadata } from 'sharp';

export const COPYRIGHT = 'Jane Doe 2026';

/** 64×48 JPEG whose EXIF has a copyright beside camera make/model and a GPS position. */
export function copyrighted(): Promise<Buffer> {
  return sharp({ create: { width: 64, height: 48, channels: 3, background: '#808080' } })
    .withExif({ IFD0: { Copyright: COPYRIGHT, Make: 'Acme', Model: 'X1' }, IFD3: { GPSLatitudeRef: 'N' } })
    .jpeg().toBuffer();
}

export const exifOf = (meta: Metadata) => (meta.exif ? exifReader(meta.exif) : undefined);

/** 40×40: red top-left, blue top-right, green bottom-left, white bottom-right. */
export async function quadrants(): Promise<Buffer> {
  const raw = Buffer.alloc(40 * 40 * 3);
  const colours = [[255, 0, 0], [0, 0, 255], [0, 255, 0], [255, 255, 255]];
  for (let y = 0; y < 40; y++) for (let x = 0; x < 40; x++) raw.set(colours[(y < 20 ? 0 : 2) + (x < 20 ? 0 : 1)], (y * 40 + x) * 3);
  return sharp(raw, { raw: { width: 40, height: 40, channels: 3 } }).png().toBuffer();
}
/** 256×16 grey ramp, 64…191: room on both sides for a contrast stretch. */
export async function gradient(): Promise<Buffer> {
  const raw = Buffer.alloc(256 * 16);
  for (let y = 0; y < 16; y++) for (let x = 0; x < 256; x++) raw[y * 256 + x] = 64 + (x >> 1);
  return sharp(raw, { raw: { width: 256, height: 16, channels: 1 } }).png().toBuffer();
}
