/**
 * Output format negotiation. Portable (no `node:`, no sharp).
 * Only `format=auto` follows `Accept` — `dependsOnAccept(spec)` says when, so the core sets `Vary: Accept` exactly
 * then and keys the variant by the bucket. Everything else is decided by the request and the source alone.
 */
import type { ImageFormat, OutputFormat, TransformSpec } from './types.js';

export type AcceptBucket = 'avif' | 'webp' | 'base';

interface MediaRange {
  type: string;
  q: number;
}

function parseAccept(accept: string): MediaRange[] {
  return accept.split(',').map((part) => {
    const [type, ...params] = part.split(';').map((s) => s.trim().toLowerCase());
    const qParam = params.find((p) => /^q\s*=/.test(p));
    const q = qParam === undefined ? 1 : Number(qParam.replace(/^q\s*=\s*/, ''));
    return { type, q: Number.isFinite(q) ? Math.min(Math.max(q, 0), 1) : 0 };
  }).filter((range) => range.type !== '');
}

/**
 * The format bucket a client's Accept header allows. Only an explicit `image/avif` / `image/webp` counts
 * (`image/*` and `*\/*` say nothing about modern formats); `q=0` means "not acceptable". When both are
 * acceptable the higher q wins, AVIF on a tie (smaller files at the same quality).
 */
export function acceptBucket(accept: string | undefined): AcceptBucket {
  if (!accept) return 'base';
  let avif = 0;
  let webp = 0;
  for (const range of parseAccept(accept)) {
    // The first range naming a type decides it (later duplicates are ignored, like most servers do).
    if (range.type === 'image/avif' && avif === 0) avif = range.q > 0 ? range.q : -1;
    if (range.type === 'image/webp' && webp === 0) webp = range.q > 0 ? range.q : -1;
  }
  if (avif > 0 && avif >= webp) return 'avif';
  if (webp > 0) return 'webp';
  return 'base';
}

/** True when the output format follows Accept, i.e. the response must carry `Vary: Accept`. */
export function dependsOnAccept(spec: TransformSpec): boolean {
  return spec.format === 'auto';
}

/** Formats that exist as web output formats: a source in one of them keeps its family. */
const WEB_FAMILIES: Partial<Record<ImageFormat, OutputFormat>> = {
  jpeg: 'jpeg', png: 'png', webp: 'webp', gif: 'gif', avif: 'avif', svg: 'png',
};

/** The output for "no explicit format": the source's own family; other formats become PNG with alpha, else JPEG. */
export function familyOutput(sourceFormat: ImageFormat, hasAlpha = false): OutputFormat {
  return WEB_FAMILIES[sourceFormat] ?? (hasAlpha ? 'png' : 'jpeg');
}

/** True when `output` was chosen by the family rule and the source's alpha can still change it (TIFF, HEIF…). */
export function familyDependsOnAlpha(spec: TransformSpec, sourceFormat: ImageFormat, output: OutputFormat): boolean {
  const followsFamily = spec.format === undefined || (spec.format === 'auto' && output !== 'avif' && output !== 'webp');
  return followsFamily && WEB_FAMILIES[sourceFormat] === undefined;
}

const ANIMATED_OUTPUTS: ReadonlySet<OutputFormat> = new Set(['gif', 'webp']);
const ANIMATED_SOURCES: ReadonlySet<ImageFormat> = new Set(['gif', 'webp']);

/**
 * The concrete output format. An explicit format wins. `auto` picks AVIF or WebP by the Accept bucket, else the
 * source's family — except that an animation kept whole (`pages=-1` from a GIF/WebP) goes to WebP rather than
 * AVIF, because sharp cannot encode animated AVIF. Absent: the source's family (see `familyOutput`).
 */
export function resolveOutput(
  spec: TransformSpec, bucket: AcceptBucket, sourceFormat: ImageFormat, hasAlpha?: boolean,
): OutputFormat {
  if (spec.format !== undefined && spec.format !== 'auto') return spec.format;
  const family = familyOutput(sourceFormat, hasAlpha);
  if (spec.format !== 'auto' || bucket === 'base') return family;
  const keepsAnimation = spec.pages !== undefined && spec.pages !== 1 && ANIMATED_SOURCES.has(sourceFormat);
  if (keepsAnimation) return 'webp';
  return bucket;
}

export const isAnimatedOutput = (format: OutputFormat): boolean => ANIMATED_OUTPUTS.has(format);
