/**
 * Fixture generators (real sharp, in test setup) for what the corpus lacks: EXIF orientations 1–8 with a marker
 * corner, an animated WebP, an AVIF with alpha, a hostile SVG; plus pixel helpers and an independent
 * ICC → sRGB reference conversion (matrix/TRC profiles parsed by hand, not by lcms) to judge colour management,
 * and a real transformer with a one-call "transform these bytes with these query options".
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { parseConfig } from '../../src/config.js';
import { silentLogger } from '../../src/logger.js';
import { createSharpTransformer } from '../../src/transform/sharp-transformer.js';
import { acceptBucket, resolveOutput } from '../../src/transform/negotiate.js';
import { sniff } from '../../src/transform/sniff.js';
import type { Transformer, TransformResult } from '../../src/transform/types.js';
import { parseQueryOptions } from '../../src/url/options.js';

export const FIXTURES = fileURLToPath(new URL('../fixtures/', import.meta.url));
export const fixture = (name: string): Uint8Array => new Uint8Array(readFileSync(FIXTURES + name));

export type Corner = 'top-left' | 'top-right' | 'bottom-left' | 'bottom-right';

/** Where the stored image's top-left pixel appears once EXIF orientation n is applied (EXIF 2.32, tag 0x0112). */
export const MARKER_CORNER: Record<number, Corner> = {
  1: 'top-left', 2: 'top-right', 3: 'bottom-right', 4: 'bottom-left',
  5: 'top-left', 6: 'top-right', 7: 'bottom-right', 8: 'bottom-left',
};

export const ORIENTED_STORED = { width: 120, height: 80 };

/** A 120×80 blue JPEG with a red 24×24 marker in its stored top-left corner, tagged with EXIF `orientation`. */
export async function orientedJpeg(orientation: number): Promise<Uint8Array> {
  const marker = await sharp({ create: { width: 24, height: 24, channels: 3, background: '#ff0000' } }).png().toBuffer();
  const out = await sharp({ create: { ...ORIENTED_STORED, channels: 3, background: '#0000ff' } })
    .composite([{ input: marker, top: 0, left: 0 }])
    .jpeg({ quality: 95 })
    .withMetadata({ orientation })
    .toBuffer();
  return new Uint8Array(out);
}

/** An animated WebP of `frames` frames (each a different grey), 64×48, looping. */
export async function animatedWebp(frames = 5): Promise<Uint8Array> {
  const width = 64;
  const height = 48;
  const strip = Buffer.alloc(width * height * frames * 4);
  for (let f = 0; f < frames; f++) {
    strip.fill(Buffer.from([40 * f, 255 - 40 * f, 128, 255]), f * width * height * 4, (f + 1) * width * height * 4);
  }
  const out = await sharp(strip, { raw: { width, height: height * frames, channels: 4, pageHeight: height } })
    .webp({ loop: 0, delay: Array(frames).fill(100), lossless: true })
    .toBuffer();
  return new Uint8Array(out);
}

/** A 40×30 AVIF with a transparent right half. */
export async function avifWithAlpha(): Promise<Uint8Array> {
  const half = await sharp({ create: { width: 20, height: 30, channels: 4, background: '#00ff00ff' } }).png().toBuffer();
  const out = await sharp({ create: { width: 40, height: 30, channels: 4, background: '#00000000' } })
    .composite([{ input: half, left: 0, top: 0 }]).avif({ effort: 0, lossless: true }).toBuffer();
  return new Uint8Array(out);
}

/** An SVG with a <script> and external references (image, stylesheet, font) all pointing at `canaryUrl`. */
export function hostileSvg(canaryUrl: string): Uint8Array {
  return new TextEncoder().encode(`<?xml version="1.0"?>
<?xml-stylesheet href="${canaryUrl}/style.css"?>
<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" width="100" height="50">
  <style>@import url("${canaryUrl}/import.css"); @font-face { font-family: x; src: url("${canaryUrl}/font.woff"); }</style>
  <script>fetch("${canaryUrl}/script");</script>
  <rect width="100" height="50" fill="#336699"/>
  <image href="${canaryUrl}/image.png" x="0" y="0" width="50" height="50"/>
  <image xlink:href="${canaryUrl}/legacy.png" x="50" y="0" width="50" height="50"/>
  <use href="${canaryUrl}/sprite.svg#icon"/>
</svg>`);
}

export interface RawImage {
  data: Buffer;
  width: number;
  height: number;
  channels: number;
}

export async function rawPixels(image: Uint8Array, options: { ignoreIcc?: boolean; depth?: 'uchar' | 'ushort' } = {}): Promise<RawImage> {
  const pipeline = sharp(image, { ignoreIcc: options.ignoreIcc });
  // 16-bit samples stay 16-bit only in a 16-bit colourspace (sRGB output would cast to 8 bits first).
  if (options.depth === 'ushort') pipeline.toColourspace('rgb16');
  const { data, info } = await pipeline.raw({ depth: options.depth ?? 'uchar' }).toBuffer({ resolveWithObject: true });
  return { data, width: info.width, height: info.height, channels: info.channels };
}

/** Mean RGB of a square region (size × size) at a corner. */
export function cornerColour(img: RawImage, corner: Corner, size = 8): [number, number, number] {
  const x0 = corner.endsWith('left') ? 0 : img.width - size;
  const y0 = corner.startsWith('top') ? 0 : img.height - size;
  const sum = [0, 0, 0];
  for (let y = y0; y < y0 + size; y++) {
    for (let x = x0; x < x0 + size; x++) {
      for (let c = 0; c < 3; c++) sum[c] += img.data[(y * img.width + x) * img.channels + c];
    }
  }
  return sum.map((s) => s / (size * size)) as [number, number, number];
}

/** The corner holding the red marker. */
export function redCorner(img: RawImage): Corner | undefined {
  const corners: Corner[] = ['top-left', 'top-right', 'bottom-left', 'bottom-right'];
  return corners.find((corner) => {
    const [r, g, b] = cornerColour(img, corner);
    return r > 180 && g < 80 && b < 80;
  });
}

// ---- An independent ICC (matrix/TRC) → sRGB conversion, the reference for colour-management tests ----

interface MatrixProfile {
  /** Columns: PCS (D50) XYZ of the red, green, blue primaries. */
  toXyz: number[][];
  gamma: [number, number, number];
}

function readTags(icc: Buffer): Map<string, Buffer> {
  const tags = new Map<string, Buffer>();
  const count = icc.readUInt32BE(128);
  for (let i = 0; i < count; i++) {
    const at = 132 + i * 12;
    const offset = icc.readUInt32BE(at + 4);
    tags.set(icc.toString('latin1', at, at + 4), icc.subarray(offset, offset + icc.readUInt32BE(at + 8)));
  }
  return tags;
}

const s15 = (b: Buffer, at: number) => b.readInt32BE(at) / 65536;

/** Parses rXYZ/gXYZ/bXYZ and single-gamma `curv` TRCs (what the P3 and Rec.2020 fixtures carry). */
export function parseMatrixProfile(icc: Buffer): MatrixProfile {
  const tags = readTags(icc);
  const xyz = (name: string) => { const t = tags.get(name)!; return [s15(t, 8), s15(t, 12), s15(t, 16)]; };
  const gamma = (name: string): number => {
    const t = tags.get(name)!;
    if (t.toString('latin1', 0, 4) !== 'curv') throw new Error(`${name}: only curv TRCs are supported here`);
    const n = t.readUInt32BE(8);
    if (n === 0) return 1;
    if (n === 1) return t.readUInt16BE(12) / 256;
    throw new Error(`${name}: sampled curves are not supported here`);
  };
  const [r, g, b] = [xyz('rXYZ'), xyz('gXYZ'), xyz('bXYZ')];
  return { toXyz: [0, 1, 2].map((row) => [r[row], g[row], b[row]]), gamma: [gamma('rTRC'), gamma('gTRC'), gamma('bTRC')] };
}

/** D50 XYZ → linear sRGB (Bradford-adapted sRGB matrix, as ICC v2/v4 PCS uses). */
const XYZ_D50_TO_SRGB = [
  [3.1338561, -1.6168667, -0.4906146],
  [-0.9787684, 1.9161415, 0.033454],
  [0.0719453, -0.2289914, 1.4052427],
];

const srgbEncode = (v: number) => {
  const c = Math.min(1, Math.max(0, v));
  return c <= 0.0031308 ? 12.92 * c : 1.055 * c ** (1 / 2.4) - 0.055;
};

/** Converts one pixel given as 0…1 device values in `profile` to 0…255 sRGB (relative colorimetric, clipped). */
export function toSrgb(profile: MatrixProfile, rgb: [number, number, number]): [number, number, number] {
  const linear = rgb.map((v, i) => v ** profile.gamma[i]);
  const xyz = profile.toXyz.map((row) => row[0] * linear[0] + row[1] * linear[1] + row[2] * linear[2]);
  return XYZ_D50_TO_SRGB.map((row) => 255 * srgbEncode(row[0] * xyz[0] + row[1] * xyz[1] + row[2] * xyz[2])) as [number, number, number];
}

/**
 * Mean absolute difference (0…255 scale) between `actual` (8-bit sRGB output) and the reference conversion of
 * `source` (raw device values at `sourceMax` full scale), over fully opaque pixels.
 */
export function meanDiffFromReference(actual: RawImage, source: RawImage, sourceMax: number, profile: MatrixProfile): number {
  let total = 0;
  let count = 0;
  for (let i = 0; i < actual.width * actual.height; i++) {
    if (source.channels === 4 && sampleAt(source, i, 3, sourceMax) < 1) continue;
    const px = [0, 1, 2].map((c) => sampleAt(source, i, c, sourceMax)) as [number, number, number];
    const expected = toSrgb(profile, px);
    for (let c = 0; c < 3; c++) total += Math.abs(actual.data[i * actual.channels + c] - expected[c]);
    count += 3;
  }
  return total / count;
}

function sampleAt(img: RawImage, pixel: number, channel: number, max: number): number {
  const index = pixel * img.channels + channel;
  return (max > 255 ? img.data.readUInt16LE(index * 2) : img.data[index]) / max;
}

/** Mean absolute difference between two 8-bit images of the same size, RGB only. */
export function meanAbsDiff(a: RawImage, b: RawImage): number {
  let total = 0;
  const pixels = a.width * a.height;
  for (let i = 0; i < pixels; i++) {
    for (let c = 0; c < 3; c++) total += Math.abs(a.data[i * a.channels + c] - b.data[i * b.channels + c]);
  }
  return total / (pixels * 3);
}

// ---- A real sharp transformer, and "transform this fixture with these query options" ----

export function testTransformer(env: Record<string, string> = {}): Transformer {
  const config = parseConfig({ IMGRELAY_WORKERS: '2', ...env });
  return createSharpTransformer(config, { logger: silentLogger });
}

/** Transforms `source` as the query `options` (weserv names) would, with `accept` deciding `output=auto`. */
export async function transformWith(
  transformer: Transformer, source: Uint8Array, options: string, accept?: string,
): Promise<TransformResult> {
  const spec = parseQueryOptions(new URLSearchParams(options)).spec;
  const sourceFormat = sniff(source);
  if (!sourceFormat) throw new Error('fixture does not sniff as an image');
  const output = resolveOutput(spec, acceptBucket(accept), sourceFormat);
  return transformer.transform({ source, sourceFormat, spec, output });
}

/** What a client decoding the body would see. */
export async function inspect(body: Uint8Array) {
  const meta = await sharp(body, { pages: -1 }).metadata();
  return {
    format: meta.format,
    width: meta.width,
    height: meta.pageHeight ?? meta.height,
    pages: meta.pages ?? 1,
    channels: meta.channels,
    hasAlpha: meta.hasAlpha,
    depth: meta.depth,
    space: meta.space,
    hasExif: meta.exif !== undefined,
    orientation: meta.orientation,
  };
}
