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
import { copyrightOf } from './copyright.js';
import { type CostEstimate, type CostInput, type GifEffort, type Size, estimateCost, overBudget }
  from './cost.js';

/** The Config fields the pipeline reads (the transformer receives the whole Config). */
export interface PipelineLimits {
  maxSourcePixels: number;
  maxAnimationPixels: number;
  maxOutputDimension: number;
  transformTimeoutS: number;
  avifEffort: number;
  /** Estimated CPU milliseconds a job may cost (cost.ts); over it the job is refused before it is queued. */
  transformBudgetMs: number;
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
  /** GIF output only: sharp's palette effort, lowered for outputs that would cost too much at the default. */
  gifEffort: GifEffort;
  /** The estimated cost, within the budget (the transformer puts costly jobs in the heavy lane). */
  cost: CostEstimate;
  /** `metadata=copyright`, JPEG output, source with the tag: the one EXIF tag written (steps.ts). */
  copyright?: string;
}

/** What the plan reads from a header. */
type Header = Pick<Metadata,
  'format' | 'compression' | 'width' | 'height' | 'pageHeight' | 'pages' | 'hasAlpha' | 'orientation'>
  & { exif?: Uint8Array };

/** Formats sharp's prebuilt libvips cannot decode: refused before any decoder sees them. */
const UNDECODABLE: ReadonlySet<ImageFormat> = new Set(['jxl', 'bmp', 'ico']);

/**
 * Reads the header and plans the job, refusing (before any pixel is decoded, before any pool slot is taken) what
 * must not be decoded and what would cost more than the budget. Options no image can afford were refused by the
 * transformer's `check` before the source was even fetched (ImageService.get), so they are not judged again here.
 */
export async function probe(job: TransformJob, limits: PipelineLimits, gate: HeaderGate = ungated): Promise<Plan> {
  if (UNDECODABLE.has(job.sourceFormat)) fail('E_UNSUPPORTED_MEDIA', `${job.sourceFormat.toUpperCase()} images cannot be transformed`);
  const meta = await readHeader(job, gate);
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
  const upright = turned(orientedSize(frame, meta.orientation), job.spec.rotate);
  const density = meta.format === 'svg' ? svgDensity(job.spec, upright, limits) : undefined;
  const scale = density === undefined ? 1 : density / 72;
  const rendered = { width: upright.width * scale, height: upright.height * scale };
  const { box, fit } = boundedBox(job.spec, rendered, limits.maxOutputDimension);
  const outputSize = producedSize(fit, box, rendered, job.spec.withoutEnlargement === true);
  const wanted = pagesToKeep(job.spec, output, meta, framePixels, outputSize, limits);
  const costing = { job, output, frame: rendered, outputSize, fit };
  const { pages, gifEffort, cost } = withinBudget(costing, wanted, limits);
  // Rounded up on each side (renderers round up too): the budget was checked above, this only backs it up.
  const pixelLimit = Math.ceil(rendered.width + 1) * Math.ceil(rendered.height + 1) * pages;
  const copyright = job.spec.keepCopyright && !job.spec.keepMetadata && output === 'jpeg' ? copyrightOf(meta.exif) : undefined;
  return { spec: job.spec, output, pages, density, pixelLimit, box, fit, hasAlpha: meta.hasAlpha, gifEffort, cost,
    copyright };
}

interface Costing {
  job: TransformJob;
  output: OutputFormat;
  frame: Size;
  outputSize: Size;
  fit: Plan['fit'];
}

/**
 * The cheapest acceptable way to honour the request, most faithful first: the animation at GIF's best palette, then
 * at a cheaper one, then the first frame only (a still beats an error for an <img>). None within budget → 422.
 */
function withinBudget(costing: Costing, wantedPages: number, limits: PipelineLimits) {
  const pageOptions = wantedPages > 1 ? [wantedPages, 1] : [1];
  const efforts: GifEffort[] = costing.output === 'gif' ? [7, 1] : [7];
  let first: { input: CostInput; cost: CostEstimate } | undefined;
  for (const pages of pageOptions) {
    for (const gifEffort of efforts) {
      const input = costInput(costing, pages, gifEffort, limits);
      const cost = estimateCost(input);
      if (cost.ms <= limits.transformBudgetMs) return { pages, gifEffort, cost };
      first ??= { input, cost };
    }
  }
  throw overBudget(first!.input, first!.cost, limits.transformBudgetMs);
}

function costInput({ job, output, frame, outputSize, fit }: Costing, pages: number, gifEffort: GifEffort,
  limits: PipelineLimits): CostInput {
  const gravity = job.spec.gravity;
  return {
    sourceFormat: job.sourceFormat, output, frame, outputSize, frames: pages,
    blur: job.spec.blur, sharpen: job.spec.sharpen, avifEffort: limits.avifEffort, gifEffort,
    smartCrop: fit === 'cover' && pages === 1 && (gravity === 'attention' || gravity === 'entropy'),
  };
}

/**
 * The size of one output frame: the box for the fits that fill it (cover, fill, contain pad to it), the scaled
 * source for inside/outside and single-sided boxes; never larger than the source when enlarging is off.
 */
function producedSize(fit: Plan['fit'], box: Box, source: Size, withoutEnlargement: boolean): Size {
  if (box.width === undefined && box.height === undefined) return source;
  const both = box.width !== undefined && box.height !== undefined;
  if (both && fit !== 'inside' && fit !== 'outside') {
    if (!withoutEnlargement) return { width: box.width!, height: box.height! };
    return { width: Math.min(box.width!, source.width), height: Math.min(box.height!, source.height) };
  }
  const out = expectedOutput(fit, box, source);
  const shrink = withoutEnlargement ? Math.min(1, source.width / out.width) : 1;
  return { width: Math.max(1, Math.round(out.width * shrink)), height: Math.max(1, Math.round(out.height * shrink)) };
}

/**
 * Runs a header read that needs libvips (probe-gate.ts bounds them); a JPEG header parsed in JS needs none.
 * Ungated by default (the cost matrix probes one job at a time).
 */
export type HeaderGate = <T>(read: () => Promise<T>) => Promise<T>;
const ungated: HeaderGate = (read) => read();

async function readHeader(job: TransformJob, gate: HeaderGate): Promise<Header> {
  const jpeg = job.sourceFormat === 'jpeg' ? readJpegHeader(job.source) : undefined;
  if (jpeg) return { format: 'jpeg', hasAlpha: false, ...jpeg };
  // The header's dimensions are what we judge, so sharp's own (too high) pixel limit must not refuse first.
  return gate(() => sharp(job.source, { limitInputPixels: false, failOn: 'error' }).metadata()
    .catch((error: unknown) => { throw toImageError(error); }));
}

/** One frame: sharp reports `height` as one page unless every page is loaded; pageHeight when it knows better. */
function frameSize(meta: Header): Size {
  if (!meta.width || !meta.height) throw new RelayError('E_IMAGE_INVALID', 'The image header declares no size');
  return { width: meta.width, height: meta.pageHeight ?? meta.height };
}

/** A quarter turn (rotate=90/270) swaps width and height too. */
function turned(frame: Size, rotate?: number): Size {
  return rotate === 90 || rotate === 270 ? { width: frame.height, height: frame.width } : frame;
}

/** EXIF orientations 5–8 swap width and height. */
function orientedSize(frame: Size, orientation?: number): Size {
  return orientation !== undefined && orientation >= 5 ? { width: frame.height, height: frame.width } : frame;
}

/**
 * Frames to decode: the animation is kept for `pages=-1` (or n>1) into GIF/WebP while frames × pixels stay within
 * maxAnimationPixels, counted on both sides: decoded source frames and produced output frames (1,000 one-pixel
 * frames asked for at 400 wide are 160 MP of output). Otherwise, and for EXIF orientations 5–8 (libvips cannot
 * rotate a multi-page image by 90°), the first frame only: a still image beats an error for an <img>.
 */
function pagesToKeep(spec: TransformSpec, output: OutputFormat, meta: Header, framePixels: number, produced: Size,
  limits: PipelineLimits): number {
  const available = meta.pages ?? 1;
  const wanted = spec.pages ?? DEFAULTS.pages;
  if (wanted === 1 || available <= 1 || !isAnimatedOutput(output)) return 1;
  if (meta.orientation !== undefined && meta.orientation >= 5) return 1;
  if (spec.rotate === 90 || spec.rotate === 270) return 1; // the same libvips limit as orientations 5–8
  const pages = wanted === -1 ? available : Math.min(wanted, available);
  const largest = Math.max(framePixels, produced.width * produced.height);
  return largest * pages <= limits.maxAnimationPixels ? pages : 1;
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
