/**
 * Transforms at the edge through Cloudflare's Images binding (`[images] binding = "IMAGES"`, docs/edge.md
 * "Transforms at the edge"). The binding is a Transformer like sharp on Node, so everything around it is the image
 * service's: the same parsed option table (TransformSpec), output cap, Accept negotiation, cache keys, tiers and
 * in-flight budget. What it cannot do the same way is named by `edgeImagesBlocker` BEFORE anything is fetched, and
 * the edge forwards that request to the Node origin (or answers 501 naming the option).
 *
 * Portable: no sharp, no `node:`. The binding is described by the small interface below (the Workers types are
 * not a dependency of this project).
 */
import { RelayError } from './errors.js';
import type { Fit, ImageFormat, OutputFormat, TransformJob, TransformResult, Transformer, TransformSpec }
  from './transform/types.js';
import { DEFAULTS, normaliseSpec, OPTIONS } from './url/options.js';
import { readBodyCapped } from './fetch/fetch-fetcher.js';
import { MIME_TYPES } from './transform/sniff.js';

/** The part of the Workers Images binding used here (Cloudflare: "Images binding", `env.IMAGES`). */
export interface ImagesBindingLike {
  info(stream: ReadableStream<Uint8Array>): Promise<ImagesInfo>;
  input(stream: ReadableStream<Uint8Array>): ImagesTransformerLike;
}

/** `info()`: SVG has no size. */
export interface ImagesInfo {
  format: string;
  fileSize?: number;
  width?: number;
  height?: number;
}

export interface ImagesTransformerLike {
  transform(transform: Record<string, unknown>): ImagesTransformerLike;
  output(options: { format: string; quality?: number; background?: string; anim?: boolean }): Promise<{
    response(): Response;
    contentType(): string;
  }>;
}

export interface EdgeImagesLimits {
  maxSourcePixels: number;
  /** The output is read into the isolate: bounded like a source (IMGRELAY_MAX_SOURCE_BYTES). */
  maxSourceBytes: number;
  /** IMGRELAY_TRANSFORM_TIMEOUT_S: the binding's info, transform and output read together, as sharp's job on Node. */
  transformTimeoutS: number;
}

/** imgrelay's fits (sharp's words) → Cloudflare's, without and with "never enlarge" (url/options.ts maps back). */
const CF_FITS: Partial<Record<Fit, readonly [string, string | undefined]>> = {
  inside: ['contain', 'scale-down'], cover: ['cover', 'crop'],
  contain: ['pad', undefined], fill: ['squeeze', undefined],
};

/** Gravities with the same meaning on Cloudflare (`attention` is saliency on both: Cloudflare calls it `auto`). */
const CF_GRAVITIES: Record<string, string> = {
  top: 'top', bottom: 'bottom', left: 'left', right: 'right', attention: 'auto',
};

/**
 * Spec fields the binding honours (checked below); any other field, present or future, is forwarded.
 * `keepCopyright` is Cloudflare's own default (`metadata=copyright`), left to the binding's own rules: forwarding it
 * would forward every path-form transform (miniflare's local binding strips it; docs/edge.md says so).
 */
const HANDLED: ReadonlySet<string> = new Set([
  'width', 'height', 'fit', 'withoutEnlargement', 'gravity', 'quality', 'format', 'pages', 'background', 'keepCopyright',
]);

/** Sources the binding reads (Cloudflare: JPEG, PNG, GIF, WebP, AVIF; SVG is not resized). */
const READABLE: ReadonlySet<ImageFormat> = new Set(['jpeg', 'png', 'gif', 'webp', 'avif']);

/**
 * The first option of `spec` the binding cannot do as the Node service does, or undefined when it can do them all.
 * Checked on the normalised spec (defaults dropped, dpr folded in), so `fit=inside&gravity=top` is not refused
 * for a gravity that has no effect.
 */
export function edgeImagesBlocker(spec: TransformSpec): string | undefined {
  const normal = normaliseSpec(spec);
  for (const field of Object.keys(normal)) if (!HANDLED.has(field)) return field;
  const fits = CF_FITS[normal.fit ?? 'inside'];
  if (!fits) return 'fit';
  if (normal.withoutEnlargement && fits[1] === undefined) return 'withoutEnlargement';
  if (normal.gravity && normal.gravity !== 'center' && !CF_GRAVITIES[normal.gravity]) return 'gravity';
  if (normal.pages !== undefined && normal.pages !== -1) return 'pages';
  return undefined;
}

/** A spec field as the client spelled it in `form` (`il` for interlace in the query form), for the 501's detail. */
export function optionName(field: string, form: string): string {
  type Spellings = { query?: { names: readonly string[] }; path?: { names: readonly string[] } };
  const def = (OPTIONS as Record<string, Spellings>)[field];
  const names = form === 'path' ? def?.path?.names : def?.query?.names;
  return names?.[0] ?? field;
}

/** The binding's transform for a spec `edgeImagesBlocker` accepted (width/height already in output pixels). */
export function bindingTransform(spec: TransformSpec): Record<string, unknown> {
  const normal = normaliseSpec(spec);
  const fits = CF_FITS[normal.fit ?? 'inside']!;
  const transform: Record<string, unknown> = {
    width: normal.width, height: normal.height,
    fit: normal.width === undefined && normal.height === undefined ? undefined
      : normal.withoutEnlargement ? fits[1] : fits[0],
    gravity: normal.gravity ? CF_GRAVITIES[normal.gravity] : undefined,
    background: normal.fit === 'contain' ? normal.background : undefined,
  };
  for (const key of Object.keys(transform)) if (transform[key] === undefined) delete transform[key];
  return transform;
}

const LOSSLESS: ReadonlySet<OutputFormat> = new Set(['png', 'gif']);

/** The binding's output options: the format the image service resolved (Accept included), quality, animation. */
export function bindingOutput(job: Pick<TransformJob, 'spec' | 'output'>) {
  const normal = normaliseSpec(job.spec);
  return {
    format: MIME_TYPES[job.output],
    // Always sent for lossy outputs: the binding's own default is Cloudflare's, not the origin's (DEFAULTS.quality).
    ...(LOSSLESS.has(job.output) ? {} : { quality: normal.quality ?? DEFAULTS.quality }),
    // Flattening onto an explicit JPEG uses the background, as on Node (steps.ts).
    ...(job.output === 'jpeg' && normal.background ? { background: normal.background } : {}),
    anim: normal.pages === -1,
  };
}

export function createImagesTransformer(binding: ImagesBindingLike, limits: EdgeImagesLimits): Transformer {
  return {
    async transform(job) {
      if (!READABLE.has(job.sourceFormat)) {
        throw new RelayError('E_NOT_IMPLEMENTED', `The Images binding cannot transform ${job.sourceFormat} sources`);
      }
      return withDeadline(transformThrough(binding, job, limits), limits.transformTimeoutS);
    },
  };
}

async function transformThrough(binding: ImagesBindingLike, job: TransformJob, limits: EdgeImagesLimits)
  : Promise<TransformResult> {
  await checkPixels(binding, job, limits);
  const result = await binding.input(streamOf(job.source)).transform(bindingTransform(job.spec))
    .output(bindingOutput(job)).catch((error: unknown) => { throw bindingError(error); });
  const body = await readBodyCapped(result.response(), limits.maxSourceBytes).catch((error: unknown) => {
    throw bindingError(error);
  });
  // The binding does not report the output size; nothing downstream reads it (image-response.ts).
  return { body, format: job.output, contentType: MIME_TYPES[job.output], width: 0, height: 0 };
}

/** A binding that does not answer is a 504 E_TRANSFORM_TIMEOUT after the transform deadline, as sharp's job is. */
async function withDeadline<T>(work: Promise<T>, seconds: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new RelayError('E_TRANSFORM_TIMEOUT',
      `The Images binding did not finish within IMGRELAY_TRANSFORM_TIMEOUT_S (${seconds} s)`)), seconds * 1000);
  });
  try {
    return await Promise.race([work, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

/** Pixels from the binding's `info()` (the header), refused like sharp's limit before any decoding is paid for. */
async function checkPixels(binding: ImagesBindingLike, job: TransformJob, limits: EdgeImagesLimits): Promise<void> {
  const info = await binding.info(streamOf(job.source)).catch((error: unknown) => { throw bindingError(error); });
  const pixels = (info.width ?? 0) * (info.height ?? 0);
  if (pixels > limits.maxSourcePixels) {
    throw new RelayError('E_IMAGE_INVALID',
      `The image has ${info.width}x${info.height} pixels, over the limit of ${limits.maxSourcePixels}`);
  }
}

function streamOf(bytes: Uint8Array): ReadableStream<Uint8Array> {
  return new Blob([bytes as Uint8Array<ArrayBuffer>]).stream();
}

/**
 * The binding's errors carry Cloudflare's codes (`code`: 9520 an input or output it does not support; other 95xx a
 * request it refused). An image it refuses is the client's 415/422 (briefly cached like sharp's verdicts), never a
 * 500; a failure of the service itself (no code, or a 5xx behind it) is a 502 that is never cached as a verdict.
 */
export function bindingError(error: unknown): RelayError {
  if (error instanceof RelayError) return error;
  const code = (error as { code?: unknown } | undefined)?.code;
  const message = error instanceof Error ? error.message : String(error);
  if (code === 9520) return new RelayError('E_UNSUPPORTED_MEDIA', `The Images binding refused the image: ${message}`);
  if (typeof code === 'number' && !/\bresponse 5\d\d\b/.test(message)) {
    return new RelayError('E_IMAGE_INVALID', `The Images binding could not transform the image: ${message}`);
  }
  return new RelayError('E_UPSTREAM', 'The Images binding failed', { cause: error });
}
