/**
 * imgrelay's decode → orient → resize → encode settings (src/transform/steps.ts) for one EncodeSpec, read from
 * its own code where they are configurable, so the raw-sharp limit and the I/O floor follow imgrelay.
 */
import sharp from 'sharp';
import { parseConfig } from '../../src/config.js';
import { avifQuality } from '../../src/transform/steps.js';
import type { EncodeSpec } from './encode.js';

export const AVIF_EFFORT = parseConfig({}).avifEffort;
export const DEFAULT_QUALITY = 80;

export function sharpEncode(input: Buffer, spec: EncodeSpec): Promise<Buffer> {
  const pipeline = sharp(input, { sequentialRead: true, failOn: 'error' }).autoOrient().resize({ width: spec.width });
  const quality = spec.quality ?? DEFAULT_QUALITY;
  switch (spec.format) {
    case 'jpeg': return pipeline.jpeg({ quality, mozjpeg: false }).toBuffer();
    case 'webp': return pipeline.webp({ quality, effort: 4 }).toBuffer();
    case 'avif': return pipeline.avif({ quality: avifQuality(quality), effort: AVIF_EFFORT }).toBuffer();
  }
}

/** One libvips thread per pipeline, parallelism from running pipelines side by side (FIELD-NOTES), no op cache. */
export function tuneSharp(): void {
  sharp.concurrency(1);
  sharp.cache(false);
}
