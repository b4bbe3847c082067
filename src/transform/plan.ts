/**
 * Step (a) of the sharp pipeline, "probe": read the header only (no pixel is decoded: jpeg-header.ts for JPEGs,
 * sharp's `metadata()` for the rest), refuse what must not be decoded, and decide everything the later steps need —
 * the concrete output format, whether the animation is kept, the SVG render density and the target box clamped to
 * the output limit. Node only.
 */
import sharp, { type Metadata } from 'sharp';
import { RelayError, fail } from '../errors.js';
import type { ImageFormat, OutputFormat, TransformJob, TransformSpec } from './types.js';
import { familyDependsOnAlpha, familyOutput, isAnimatedOutput } from './negotiate.js';
import { DEFAULTS, targetSize } from '../url/options.js';
import { toImageError } from './sharp-errors.js';
import { readJpegHeader } from './jpeg-header.js';

/** The Config fields the pipeline reads (the transformer receives the whole Config). */
export interface PipelineLimits {
  maxSourcePixels: number;
  maxAnimationPixels: number;
  maxOutputDimension: number;
  transformTimeoutS: number;
  avifEffort: number;
}

export interface Box {
  width?: number;
  height?: number;
}

export interface Plan {
  spec: TransformSpec;
  output: OutputFormat;
  /** Pages to decode: 1 (first frame) or more (the animation is kept). */
  pages: number;
  /** SVG only: render density (dpi), so vectors are rasterised at the target size rather than upscaled. */
  density?: number;
  /** Pixels one decoded frame may have: what sharp's limitInputPixels enforces during decoding. */
  pixelLimit: number;
  /** The resize box in output pixels (dpr applied, clamped), or none at all. */
  box: Box;
  /** The resulting fit: `inside` for the implicit "bound to the max dimension" resize. */
  fit: NonNullable<TransformSpec['fit']>;
  hasAlpha: boolean;
}

/** What the plan reads from a header. */
type Header = Pick<Metadata,
  'format' | 'compression' | 'width' | 'height' | 'pageHeight' | 'pages' | 'hasAlpha' | 'orientation'>;

/** Formats sharp's prebuilt libvips cannot decode: refused before any decoder sees them. */
const UNDECODABLE: ReadonlySet<ImageFormat> = new Set(['jxl', 'bmp', 'ico']);

export async function probe(job: TransformJob, limits: PipelineLimits): Promise<Plan> {
  if (UNDECODABLE.has(job.sourceFormat)) fail('E_UNSUPPORTED_MEDIA', `${job.sourceFormat.toUpperCase()} images cannot be transformed`);
  const meta = await readHeader(job);
  if (meta.format === 'heif' && meta.compression !== 'av1') {
    fail('E_UNSUPPORTED_MEDIA', 'HEIC (HEVC) images cannot be transformed');
  }
  const frame = frameSize(meta);
  const framePixels = frame.width * frame.height;
  if (framePixels > limits.maxSourcePixels) {
    fail('E_IMAGE_INVALID', `The image has ${frame.width}x${frame.height} pixels, over the limit of ${limits.maxSourcePixels}`);
  }
  const output = familyDependsOnAlpha(job.spec, job.sourceFormat, job.output)
    ? familyOutput(job.sourceFormat, meta.hasAlpha) : job.output;
  const pages = pagesToKeep(job.spec, output, meta, framePixels, limits);
  const upright = orientedSize(frame, meta.orientation);
  const density = meta.format === 'svg' ? svgDensity(job.spec, upright, limits) : undefined;
  const scale = density === undefined ? 1 : density / 72;
  const rendered = { width: upright.width * scale, height: upright.height * scale };
  const { box, fit } = boundedBox(job.spec, rendered, limits.maxOutputDimension);
  // Rounded up on each side (renderers round up too): the budget was checked above, this only backs it up.
  const pixelLimit = Math.ceil(rendered.width + 1) * Math.ceil(rendered.height + 1) * pages;
  return { spec: job.spec, output, pages, density, pixelLimit, box, fit, hasAlpha: meta.hasAlpha };
}

async function readHeader(job: TransformJob): Promise<Header> {
  const jpeg = job.sourceFormat === 'jpeg' ? readJpegHeader(job.source) : undefined;
  if (jpeg) return { format: 'jpeg', hasAlpha: false, ...jpeg };
  try {
    // The header's dimensions are what we judge, so sharp's own (too high) pixel limit must not refuse first.
    return await sharp(job.source, { limitInputPixels: false, failOn: 'error' }).metadata();
  } catch (error) {
    throw toImageError(error);
  }
}

/** One frame: sharp reports `height` as one page unless every page is loaded; pageHeight when it knows better. */
function frameSize(meta: Header): { width: number; height: number } {
  if (!meta.width || !meta.height) throw new RelayError('E_IMAGE_INVALID', 'The image header declares no size');
  return { width: meta.width, height: meta.pageHeight ?? meta.height };
}

/** EXIF orientations 5–8 swap width and height. */
function orientedSize(frame: { width: number; height: number }, orientation?: number) {
  return orientation !== undefined && orientation >= 5 ? { width: frame.height, height: frame.width } : frame;
}

/**
 * Frames to decode: the animation is kept for `pages=-1` (or n>1) into GIF/WebP while frames × pixels stay
 * within maxAnimationPixels; otherwise the first frame only (a still image beats an error for an <img>).
 */
function pagesToKeep(spec: TransformSpec, output: OutputFormat, meta: Header, framePixels: number, limits: PipelineLimits): number {
  const available = meta.pages ?? 1;
  const wanted = spec.pages ?? DEFAULTS.pages;
  if (wanted === 1 || available <= 1 || !isAnimatedOutput(output)) return 1;
  const pages = wanted === -1 ? available : Math.min(wanted, available);
  return framePixels * pages <= limits.maxAnimationPixels ? pages : 1;
}

/** Render an SVG at the density that yields the requested size (vectors scale; bitmaps would blur). */
function svgDensity(spec: TransformSpec, natural: { width: number; height: number }, limits: PipelineLimits): number {
  const { width, height } = targetSize(spec);
  const ratios = [width === undefined ? 0 : width / natural.width, height === undefined ? 0 : height / natural.height];
  let scale = Math.max(1, ...ratios);
  scale = Math.min(scale, Math.sqrt(limits.maxSourcePixels / (natural.width * natural.height)), 100_000 / 72);
  return Math.max(1, Math.round(72 * scale * 100) / 100);
}

/**
 * The resize box, clamped so that no output side exceeds `max` (the aspect of the request is kept). A request
 * without any size still gets bounded: a larger source is shrunk to fit inside max × max.
 */
export function boundedBox(spec: TransformSpec, source: { width: number; height: number }, max: number): { box: Box; fit: Plan['fit'] } {
  const fit = spec.fit ?? DEFAULTS.fit;
  const { width, height } = targetSize(spec);
  if (width === undefined && height === undefined) {
    const oversize = source.width > max || source.height > max;
    return { box: oversize ? { width: max, height: max } : {}, fit: 'inside' };
  }
  const out = expectedOutput(fit, { width, height }, source);
  const shrink = Math.min(1, max / out.width, max / out.height);
  const clamp = (v?: number) => (v === undefined ? undefined : Math.max(1, Math.floor(v * shrink)));
  return { box: { width: clamp(width), height: clamp(height) }, fit };
}

/** The size sharp will produce for a box (before "never enlarge"), to know whether it would exceed the limit. */
function expectedOutput(fit: Plan['fit'], box: Box, source: { width: number; height: number }) {
  const rw = box.width === undefined ? undefined : box.width / source.width;
  const rh = box.height === undefined ? undefined : box.height / source.height;
  if (rw === undefined || rh === undefined) {
    const r = (rw ?? rh)!;
    return { width: source.width * r, height: source.height * r };
  }
  if (fit === 'inside' || fit === 'outside') {
    const r = fit === 'inside' ? Math.min(rw, rh) : Math.max(rw, rh);
    return { width: source.width * r, height: source.height * r };
  }
  return { width: box.width!, height: box.height! };
}
