/**
 * Image metadata as JSON instead of the image: weserv `output=json` (the SOURCE, never transformed: a header read)
 * and Cloudflare `format=json` (the output's size after the request's resize, plus the original). The body is
 * cached like any variant. Node only (sharp).
 */
import sharp, { type Metadata } from 'sharp';
import { fail } from '../errors.js';
import { MIME_TYPES } from './sniff.js';
import type { ImageFormat, TransformJob, TransformResult } from './types.js';

const JSON_TYPE = 'application/json';

/** Header facts about the source, read without decoding pixels (sharp/libvips `metadata()`). */
export interface SourceFacts {
  format: ImageFormat;
  width: number;
  /** One frame's height (an animation's page height). */
  height: number;
  pages: number;
  bytes: number;
  meta: Metadata;
}

export async function readFacts(job: Pick<TransformJob, 'source' | 'sourceFormat'>): Promise<SourceFacts> {
  // A header read decodes no pixels, so the pixel limit (which would refuse describing a bomb) does not apply.
  const meta = await sharp(job.source, { pages: -1, limitInputPixels: false }).metadata();
  if (!meta.width || !meta.height) fail('E_IMAGE_INVALID', 'The source image has no dimensions');
  const pages = meta.pages ?? 1;
  const height = meta.pageHeight ?? (pages > 1 ? Math.round(meta.height / pages) : meta.height);
  return { format: job.sourceFormat, width: meta.width, height, pages, bytes: job.source.byteLength, meta };
}

function jsonResult(value: unknown, width: number, height: number): TransformResult {
  // `format` is the image pipeline's field; a JSON body keeps the shape but is not an image format.
  return { body: new TextEncoder().encode(JSON.stringify(value)), format: 'png', contentType: JSON_TYPE, width, height };
}

/** weserv's shape: sharp's metadata names (format, width, height, space, channels…, pages), plus `bytes`. */
export function weservJson(facts: SourceFacts): TransformResult {
  const { meta } = facts;
  return jsonResult({
    format: facts.format, width: facts.width, height: facts.height, space: meta.space, channels: meta.channels,
    depth: meta.depth, density: meta.density, isProgressive: meta.isProgressive ?? false,
    hasProfile: meta.hasProfile ?? false, hasAlpha: meta.hasAlpha ?? false, orientation: meta.orientation,
    pages: facts.pages, loop: meta.loop, delay: meta.delay, bytes: facts.bytes,
  }, facts.width, facts.height);
}

/** Cloudflare's shape: the output's width and height, and the original's file size, size and media type. */
export function cloudflareJson(facts: SourceFacts, output: { width: number; height: number }): TransformResult {
  return jsonResult({
    width: output.width, height: output.height,
    original: { file_size: facts.bytes, width: facts.width, height: facts.height, format: MIME_TYPES[facts.format] },
  }, output.width, output.height);
}
