/**
 * What a transform will cost, decided from the header and the options before any pixel is decoded or any pool slot
 * is taken. Pure (no sharp): the numbers are CPU milliseconds per megapixel, measured with sharp 0.35.5 alone
 * (concurrency 1, process.cpuUsage, best of a few runs) on the 2-core reference machine, on NOISE — the content
 * every encoder finds hardest, so an attacker cannot pick a costlier image than the one the table assumes.
 * docs/bounded-cost.md has the measurements and the reasoning.
 */
import { RelayError } from '../errors.js';
import type { ImageFormat, OutputFormat, TransformSpec } from './types.js';

/**
 * libvips' Gaussian blur leaves its vectorised path between sigma 250 and 300 (measured on 512²: σ 250 → 71 ms,
 * σ 300 → 1.8 s, 25× more), so no output size makes a larger sigma cheap enough. The path form's own limit is 250.
 */
export const MAX_BLUR_SIGMA = 250;

/** Decoding, per megapixel decoded (after shrink-on-load). SVG: rasterising a simple document. */
const DECODE_MS: Record<ImageFormat, number> = {
  jpeg: 12, png: 18, gif: 15, webp: 60, avif: 120, heif: 120, tiff: 25, svg: 40, jxl: 60, bmp: 20, ico: 20,
};

/** Resize, colour conversion and the pixel plumbing between steps, per megapixel decoded plus produced. */
const PIPELINE_MS = 35;

/** Encoders per output megapixel (×frames). GIF depends on its effort (palette search), AVIF on its effort. */
const ENCODE_MS: Record<Exclude<OutputFormat, 'gif' | 'avif'>, number> = { jpeg: 30, png: 65, webp: 200 };
const GIF_ENCODE_MS: Record<GifEffort, number> = { 1: 550, 7: 7000 };
/** AVIF effort 0…9: 0 and 4 measured (140 and 12,000); the others interpolated upwards, on the safe side. */
const AVIF_ENCODE_MS = [140, 400, 900, 3000, 12_000, 20_000, 30_000, 45_000, 60_000, 90_000];

/** Gaussian blur, per output megapixel and unit of sigma (the separable kernel grows linearly with sigma). */
const BLUR_MS_PER_SIGMA = 1.1;
/** Unsharp mask: a fixed part and a part growing with sigma, per output megapixel. */
const SHARPEN_MS = 90;
const SHARPEN_MS_PER_SIGMA = 6;
/** attention/entropy: a search over the resized intermediate, per megapixel decoded. */
const SMART_CROP_MS = 20;

/** sharp's GIF effort: 7 is its default (best palettes); 1 costs ~13× less on noise, for large outputs. */
export type GifEffort = 1 | 7;

export interface Size {
  width: number;
  height: number;
}

export interface CostInput {
  sourceFormat: ImageFormat;
  output: OutputFormat;
  /** One frame as decoded at scale 1 (an SVG at its render density). */
  frame: Size;
  /** One output frame. */
  outputSize: Size;
  frames: number;
  blur?: number;
  sharpen?: number;
  smartCrop: boolean;
  avifEffort: number;
  gifEffort: GifEffort;
}

export interface CostEstimate {
  /** Estimated CPU milliseconds. */
  ms: number;
  decodedPixels: number;
  outputPixels: number;
}

/** Refuses, before anything is fetched, an option no image and no output size can afford (400). */
export function checkAffordableOptions(spec: TransformSpec): void {
  if (spec.blur !== undefined && spec.blur > MAX_BLUR_SIGMA) {
    throw new RelayError('E_BAD_REQUEST', `Invalid option blur=${spec.blur}: the blur sigma is over the limit of ${MAX_BLUR_SIGMA}`);
  }
}

/**
 * The factor libvips shrinks by while decoding: JPEG by 1, 2, 4 or 8 (never below the output size), WebP by any
 * factor; the rest decode whole. Conservative: the smaller of the two axes' ratios decides.
 */
export function shrinkOnLoad(format: ImageFormat, frame: Size, output: Size): number {
  const room = Math.min(frame.width / output.width, frame.height / output.height);
  if (room <= 1) return 1;
  if (format === 'webp') return room;
  if (format === 'jpeg') return [8, 4, 2].find((f) => f <= room) ?? 1;
  return 1;
}

export function estimateCost(input: CostInput): CostEstimate {
  const shrink = shrinkOnLoad(input.sourceFormat, input.frame, input.outputSize);
  const decodedMp = (input.frame.width / shrink) * (input.frame.height / shrink) * input.frames / 1e6;
  const outputMp = input.outputSize.width * input.outputSize.height * input.frames / 1e6;
  let ms = decodedMp * (DECODE_MS[input.sourceFormat] + PIPELINE_MS) + outputMp * PIPELINE_MS;
  ms += outputMp * encodeMsPerMp(input.output, input.avifEffort, input.gifEffort);
  if (input.blur !== undefined) ms += outputMp * BLUR_MS_PER_SIGMA * Math.max(input.blur, 1);
  if (input.sharpen !== undefined) ms += outputMp * (SHARPEN_MS + SHARPEN_MS_PER_SIGMA * input.sharpen);
  if (input.smartCrop) ms += decodedMp * SMART_CROP_MS;
  return { ms, decodedPixels: Math.round(decodedMp * 1e6), outputPixels: Math.round(outputMp * 1e6) };
}

function encodeMsPerMp(output: OutputFormat, avifEffort: number, gifEffort: GifEffort): number {
  if (output === 'gif') return GIF_ENCODE_MS[gifEffort];
  if (output === 'avif') return AVIF_ENCODE_MS[Math.min(9, Math.max(0, Math.round(avifEffort)))];
  return ENCODE_MS[output];
}

/** The 422 for a job over the budget: what it would cost, what made it costly, and the limit. */
export function overBudget(input: CostInput, estimate: CostEstimate, budgetMs: number): RelayError {
  const { width, height } = input.outputSize;
  const parts = [`${input.output.toUpperCase()} output ${width}x${height}`];
  if (input.frames > 1) parts.push(`${input.frames} frames`);
  if (input.blur !== undefined) parts.push(`blur ${input.blur}`);
  if (input.sharpen !== undefined) parts.push(`sharpen ${input.sharpen}`);
  return new RelayError('E_IMAGE_INVALID', `The transform would cost about ${Math.round(estimate.ms)} ms of CPU ` +
    `(${parts.join(', ')}), over the limit of ${budgetMs} ms (IMGRELAY_TRANSFORM_BUDGET_MS)`);
}
