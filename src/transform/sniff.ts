/**
 * Magic-byte sniffing: what a body IS, whatever the upstream Content-Type claims. Portable (runs on Workers).
 * Only the first bytes are read; recognising a format says nothing about whether it decodes.
 */
import type { ImageFormat } from './types.js';

export const MIME_TYPES: Record<ImageFormat, string> = {
  jpeg: 'image/jpeg', png: 'image/png', gif: 'image/gif', webp: 'image/webp', avif: 'image/avif',
  heif: 'image/heif', jxl: 'image/jxl', bmp: 'image/bmp', tiff: 'image/tiff', ico: 'image/x-icon',
  svg: 'image/svg+xml',
};

const startsWith = (b: Uint8Array, sig: readonly number[], at = 0) =>
  b.length >= at + sig.length && sig.every((v, i) => b[at + i] === v);
const ascii = (b: Uint8Array, from: number, to: number) => String.fromCharCode(...b.subarray(from, to));

/** Binary signatures, checked in order. */
const SIGNATURES: ReadonlyArray<readonly [ImageFormat, (b: Uint8Array) => boolean]> = [
  // SOI alone (not SOI + marker): damaged JPEGs are still JPEGs to relay; decoding is judged only when transforming.
  ['jpeg', (b) => startsWith(b, [0xff, 0xd8]) && b.length >= 4],
  ['png', (b) => startsWith(b, [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])],
  ['gif', (b) => ascii(b, 0, 6) === 'GIF87a' || ascii(b, 0, 6) === 'GIF89a'],
  ['webp', (b) => ascii(b, 0, 4) === 'RIFF' && ascii(b, 8, 12) === 'WEBP'],
  ['jxl', (b) => startsWith(b, [0xff, 0x0a])
    || startsWith(b, [0x00, 0x00, 0x00, 0x0c, 0x4a, 0x58, 0x4c, 0x20, 0x0d, 0x0a, 0x87, 0x0a])],
  ['tiff', (b) => startsWith(b, [0x49, 0x49, 0x2a, 0x00]) || startsWith(b, [0x4d, 0x4d, 0x00, 0x2a])],
  ['bmp', (b) => ascii(b, 0, 2) === 'BM' && b.length >= 26],
  ['ico', (b) => startsWith(b, [0x00, 0x00, 0x01, 0x00]) && b.length >= 22 && b[4] + b[5] > 0],
];

/** ISO-BMFF brands (the `ftyp` box) that mean AVIF or another HEIF image. */
const AVIF_BRANDS = new Set(['avif', 'avis']);
const HEIF_BRANDS = new Set(['heic', 'heix', 'heim', 'heis', 'hevc', 'hevx', 'mif1', 'msf1']);

function sniffIsoBmff(b: Uint8Array): ImageFormat | undefined {
  if (b.length < 16 || ascii(b, 4, 8) !== 'ftyp') return undefined;
  const boxSize = Math.min((b[0] << 24 | b[1] << 16 | b[2] << 8 | b[3]) >>> 0, b.length, 256);
  const brands = [ascii(b, 8, 12)];
  for (let at = 16; at + 4 <= boxSize; at += 4) brands.push(ascii(b, at, at + 4));
  if (brands.some((brand) => AVIF_BRANDS.has(brand))) return 'avif';
  if (brands.some((brand) => HEIF_BRANDS.has(brand))) return 'heif';
  return undefined;
}

/** SVG by its text prefix: optional BOM/whitespace, XML declaration/PIs, comments and doctype, then `<svg`. */
function sniffSvg(b: Uint8Array): boolean {
  const head = new TextDecoder('utf-8', { fatal: false }).decode(b.subarray(0, 4096)).replace(/^\uFEFF/, '');
  const stripped = head
    .replace(/^(\s*<\?[\s\S]*?\?>)*/, '') // XML declaration and processing instructions (xml-stylesheet)
    .replace(/^(\s*<!--[\s\S]*?-->)*/, '')
    .replace(/^\s*<!DOCTYPE\s+svg[^>]*>/i, '')
    .replace(/^(\s*<!--[\s\S]*?-->)*/, '');
  return /^\s*<svg[\s>]/i.test(stripped);
}

/** The image format of `body` by its magic bytes, or undefined when it is not an image we recognise. */
export function sniff(body: Uint8Array): ImageFormat | undefined {
  for (const [format, test] of SIGNATURES) if (test(body)) return format;
  return sniffIsoBmff(body) ?? (sniffSvg(body) ? 'svg' : undefined);
}
