/**
 * Transform options as one TABLE (unjs/ipx style): each TransformSpec field with its weserv query name(s), its
 * Cloudflare path name(s) and a parser. The three URL forms (legacy options, query, path) all go through it, so
 * one request spelled three ways gives one `canonicalSpec` — one cache entry. Portable: no `node:`, no sharp.
 *
 * Bounds: widths and heights are checked against a fixed syntax range (1…16383, WebP's hard limit) because this
 * module has no Config; the sharp pipeline then CLAMPS the target box to IMGRELAY_MAX_OUTPUT_DIMENSION (keeping
 * its aspect ratio), so an over-large request degrades gracefully instead of breaking a page.
 */
import { CF_DEFAULTS, CF_FITS, cfAnim, cfDimension, cfFormat, cfGravity, cfMetadata, cfFactor, cfFlip, cfRotate, parseOnError, refuseUnsupported } from './cf-options.js';
import { type Parser, badOption, colour, flag, float, int, oneOf, pageCount, parseOrFail, sigma } from './option-parsers.js';
export { badOption } from './option-parsers.js';
import type { Fit, Gravity, OutputFormat, TransformSpec } from '../transform/types.js';

/** Options that change only the response (never the bytes, never the cache key). */
export interface ResponseOptions {
  filename?: string;
  maxAgeS?: number;
  /** weserv `default`: an image URL to serve when the source fails. */
  fallback?: string;
  /** Cloudflare `onerror=redirect`: a source error answers 302 to the source URL. */
  onErrorRedirect?: boolean;
}

export interface RequestOptions {
  spec: TransformSpec;
  response: ResponseOptions;
  /** The URL's signature (`s=` query, `sig=` path): policy only, never in the spec or a cache key (policy/signature.ts). */
  signature?: string;
  /** The spec as the URL wrote it, before the path form's Cloudflare defaults: what a signature covers. */
  signedSpec?: TransformSpec;
}

export const MAX_DIMENSION = 16_383;
/** Defaults that are dropped from the canonical form (the pipeline applies the same ones). */
export const DEFAULTS = { dpr: 1, fit: 'inside', gravity: 'center', quality: 80, pages: 1 } as const;

const dimension = int(1, MAX_DIMENSION);
const quality = int(1, 100);
const dpr = float(1, 8);
const GRAVITIES: Gravity[] = ['center', 'top', 'right', 'bottom', 'left', 'top-left', 'top-right', 'bottom-left',
  'bottom-right', 'attention', 'entropy'];
const FITS: Fit[] = ['inside', 'outside', 'cover', 'fill', 'contain'];
const QUERY_FORMATS: Record<string, OutputFormat | 'auto' | 'json'> = {
  jpg: 'jpeg', jpeg: 'jpeg', png: 'png', webp: 'webp', avif: 'avif', gif: 'gif', auto: 'auto', json: 'json',
};
const identity = <T extends string>(values: T[]) => Object.fromEntries(values.map((v) => [v, v])) as Record<string, T>;

/** One form's spelling of an option: its names and how to read a value into spec fields. */
interface Spelling {
  names: readonly string[];
  apply(raw: string, name: string): Partial<TransformSpec>;
}

const set = <K extends keyof TransformSpec>(field: K, parser: Parser<NonNullable<TransformSpec[K]>>): Spelling['apply'] =>
  (raw, name) => ({ [field]: parseOrFail(parser, raw, name) }) as Partial<TransformSpec>;

interface OptionDef<K extends keyof TransformSpec> {
  field: K;
  query?: Spelling;
  path?: Spelling;
}

/**
 * THE table. `satisfies` makes the compiler check that every TransformSpec field has exactly one entry whose
 * `field` is its own key, so adding a field to TransformSpec without a row here does not compile.
 */
export const OPTIONS = {
  width: { field: 'width', query: { names: ['w'], apply: set('width', dimension) },
    path: { names: ['width', 'w'], apply: cfDimension('width', dimension) } },
  height: { field: 'height', query: { names: ['h'], apply: set('height', dimension) },
    path: { names: ['height', 'h'], apply: cfDimension('height', dimension) } },
  dpr: { field: 'dpr', query: { names: ['dpr'], apply: set('dpr', dpr) }, path: { names: ['dpr'], apply: set('dpr', dpr) } },
  fit: { field: 'fit', query: { names: ['fit'], apply: set('fit', oneOf(identity(FITS))) },
    path: { names: ['fit'], apply: (raw, name) => parseOrFail(oneOf(CF_FITS), raw, name) } },
  withoutEnlargement: { field: 'withoutEnlargement', query: { names: ['we'], apply: set('withoutEnlargement', flag) } },
  gravity: { field: 'gravity', query: { names: ['a'], apply: set('gravity', oneOf(identity(GRAVITIES))) },
    path: { names: ['gravity', 'g'], apply: set('gravity', cfGravity) } },
  quality: { field: 'quality', query: { names: ['q'], apply: set('quality', quality) },
    path: { names: ['quality', 'q'], apply: set('quality', quality) } },
  format: { field: 'format',
    query: { names: ['output'], apply: (raw, name) => {
      const format = parseOrFail(oneOf(QUERY_FORMATS), raw, name);
      return format === 'json' ? { describe: 'weserv' } : { format };
    } },
    path: { names: ['format', 'f'], apply: cfFormat } },
  pages: { field: 'pages', query: { names: ['n'], apply: set('pages', pageCount) },
    path: { names: ['anim'], apply: cfAnim } },
  interlace: { field: 'interlace', query: { names: ['il'], apply: set('interlace', flag) } },
  blur: { field: 'blur', query: { names: ['blur'], apply: set('blur', sigma(0.3, 1000)) },
    path: { names: ['blur'], apply: set('blur', float(0.3, 250)) } },
  sharpen: { field: 'sharpen', query: { names: ['sharp'], apply: set('sharpen', sigma(0.01, 10)) },
    path: { names: ['sharpen'], apply: set('sharpen', float(0.01, 10)) } },
  background: { field: 'background', query: { names: ['bg'], apply: set('background', colour) },
    path: { names: ['background'], apply: set('background', colour) } },
  keepMetadata: { field: 'keepMetadata', path: { names: ['metadata'], apply: cfMetadata } },
  /** Spelled by `metadata` above (`metadata=copyright`, the path form's default). */
  keepCopyright: { field: 'keepCopyright' },
  brightness: { field: 'brightness', path: { names: ['brightness'], apply: cfFactor('brightness') } },
  contrast: { field: 'contrast', path: { names: ['contrast'], apply: cfFactor('contrast') } },
  saturation: { field: 'saturation', path: { names: ['saturation'], apply: cfFactor('saturation') } },
  rotate: { field: 'rotate', path: { names: ['rotate'], apply: (raw, name) => {
    const turns = parseOrFail(cfRotate, raw, name);
    return { rotate: turns === 0 ? undefined : turns };
  } } },
  flip: { field: 'flip', path: { names: ['flip'], apply: set('flip', cfFlip) } },
  /** Spelled by `format` above (`output=json`, `format=json`). */
  describe: { field: 'describe' },
} as const satisfies { [K in keyof Required<TransformSpec>]: OptionDef<K> };

type Form = 'query' | 'path';

function spellingIndex(form: Form): Map<string, Spelling> {
  const index = new Map<string, Spelling>();
  for (const def of Object.values(OPTIONS) as OptionDef<keyof TransformSpec>[]) {
    const spelling = def[form];
    for (const name of spelling?.names ?? []) index.set(name, spelling!);
  }
  return index;
}

const QUERY_INDEX = spellingIndex('query');
const PATH_INDEX = spellingIndex('path');

/** Applies pairs in order (a repeated option: the last wins); names not in the index are ignored. */
function applyPairs(pairs: Iterable<[string, string]>, index: Map<string, Spelling>): TransformSpec {
  const spec: TransformSpec = {};
  for (const [name, raw] of pairs) {
    const spelling = index.get(name);
    if (spelling) Object.assign(spec, spelling.apply(raw, name));
  }
  return spec;
}

/** weserv `maxage`: seconds, or a number with a unit (m h d w M y), between 1 second and 1 year. */
const MAX_AGE_UNITS: Record<string, number> = { '': 1, s: 1, m: 60, h: 3600, d: 86_400, w: 604_800, M: 2_592_000, y: 31_536_000 };

function parseMaxAge(raw: string): number {
  const m = /^(\d{1,9})([smhdwMy]?)$/.exec(raw.trim());
  const seconds = m ? Number(m[1]) * MAX_AGE_UNITS[m[2]] : NaN;
  if (!(seconds >= 1 && seconds <= 31_536_000)) badOption('maxage', 'seconds or a duration like 3600, 12h, 31d, 1w, 1y (at most 1y)', raw);
  return seconds;
}

function parseFallback(raw: string): string {
  try {
    const url = new URL(/^[a-z][a-z0-9+.-]*:/i.test(raw) ? raw : `http://${raw.replace(/^\/\//, '')}`);
    if (url.protocol === 'http:' || url.protocol === 'https:') return url.href;
  } catch { /* reported below */ }
  return badOption('default', 'an http(s) image URL', raw);
}

function parseResponseOptions(params: URLSearchParams): ResponseOptions {
  const response: ResponseOptions = {};
  const filename = params.get('filename');
  if (filename) response.filename = filename;
  const maxAge = params.get('maxage');
  if (maxAge !== null) response.maxAgeS = parseMaxAge(maxAge);
  const fallback = params.get('default');
  if (fallback) response.fallback = parseFallback(fallback);
  return response;
}

/** Query form (images.weserv.nl names). The caller has removed `url`. Unknown parameters are ignored. */
export function parseQueryOptions(params: URLSearchParams): RequestOptions {
  return withSignature({ spec: applyPairs(params, QUERY_INDEX), response: parseResponseOptions(params) }, params.get('s'));
}

function withSignature(options: RequestOptions, signature: string | null | undefined): RequestOptions {
  return signature === null || signature === undefined ? options : { ...options, signature };
}

/** IMGRELAY_LEGACY_OPTIONS: query syntax (`w=1600&output=auto`), parsed once at start-up. */
export function parseLegacyOptions(str: string): RequestOptions {
  return parseQueryOptions(new URLSearchParams(str.replace(/^\?/, '')));
}

/**
 * Path form (Cloudflare): `width=300,quality=80,format=auto` (already percent-decoded). Options Cloudflare documents
 * but imgrelay lacks are refused by name; unknown ones are ignored. Cloudflare's defaults come later
 * (`withCfDefaults`), once a preset is expanded.
 */
export function parseCfOptions(segment: string): RequestOptions {
  const pairs = segment.split(',').map((part) => part.trim()).filter(Boolean).map((part): [string, string] => {
    const eq = part.indexOf('=');
    return eq < 0 ? [part, ''] : [part.slice(0, eq).trim(), part.slice(eq + 1).trim()];
  });
  for (const [name] of pairs) refuseUnsupported(name);
  const onError = pairs.findLast(([name]) => name === 'onerror');
  const response: ResponseOptions = onError ? { onErrorRedirect: parseOnError(onError[1]) } : {};
  const signature = pairs.findLast(([name]) => name === 'sig')?.[1];
  return withSignature({ spec: applyPairs(pairs, PATH_INDEX), response }, signature);
}

/**
 * Cloudflare's defaults (quality 85, animation kept) under the request's own options. A request that asks for no
 * change at all stays the original bytes (no re-encode can improve on them).
 */
export function withCfDefaults(options: RequestOptions): RequestOptions {
  // `metadata=copyright` alone is Cloudflare's default, not a change: still the original bytes.
  const change: TransformSpec = { ...options.spec, keepCopyright: undefined };
  if (isIdentity(change)) return options.spec.keepCopyright ? { ...options, spec: change, signedSpec: options.spec } : options;
  return { ...options, spec: { ...CF_DEFAULTS, ...options.spec }, signedSpec: options.spec };
}

/** The output box: width/height × dpr, rounded (dpr is folded in, so `w=300&dpr=2` and `w=600` are one variant). */
export function targetSize(spec: TransformSpec): { width?: number; height?: number } {
  const scale = spec.dpr ?? 1;
  return {
    width: spec.width === undefined ? undefined : Math.round(spec.width * scale),
    height: spec.height === undefined ? undefined : Math.round(spec.height * scale),
  };
}

/** Gravity positions only the fits that crop or pad; elsewhere it changes nothing. */
const POSITIONED_FITS: ReadonlySet<Fit> = new Set(['cover', 'contain']);
/** Outputs whose encoder takes no quality (steps.ts `encode`: PNG is never palette-quantised here, GIF has no q). */
const QUALITY_FREE: ReadonlySet<string> = new Set(['png', 'gif']);

/**
 * `bg` is read by contain's padding and by flattening onto an explicit JPEG only (steps.ts). Without an explicit
 * format the output keeps the source's family, which never needs flattening (alpha → PNG, none → JPEG).
 */
const usesBackground = (spec: TransformSpec, sized: boolean, fit: Fit) => (sized && fit === 'contain') || spec.format === 'jpeg';

/**
 * The spec with defaults dropped, dpr folded into the box and no-effect fields removed (`q` on PNG/GIF, `bg` where
 * nothing is padded or flattened): requests that produce the same bytes share one key. The output-size cap is
 * applied before, by the image service (output-limit.ts), which knows IMGRELAY_MAX_OUTPUT_DIMENSION.
 */
export function normaliseSpec(spec: TransformSpec): TransformSpec {
  // weserv's JSON describes the source itself: no other option changes it.
  if (spec.describe === 'weserv') return { describe: 'weserv' };
  const { width, height } = targetSize(spec);
  const sized = width !== undefined || height !== undefined;
  const fit = spec.fit ?? DEFAULTS.fit;
  const out: TransformSpec = {
    width, height,
    fit: sized && fit !== DEFAULTS.fit ? fit : undefined,
    withoutEnlargement: sized && spec.withoutEnlargement ? true : undefined,
    gravity: sized && POSITIONED_FITS.has(fit) && spec.gravity !== DEFAULTS.gravity ? spec.gravity : undefined,
    quality: spec.quality === DEFAULTS.quality || QUALITY_FREE.has(spec.format ?? '') ? undefined : spec.quality,
    format: spec.format,
    pages: spec.pages === DEFAULTS.pages ? undefined : spec.pages,
    interlace: spec.interlace ? true : undefined,
    blur: spec.blur, sharpen: spec.sharpen, background: usesBackground(spec, sized, fit) ? spec.background : undefined,
    keepMetadata: spec.keepMetadata ? true : undefined,
    keepCopyright: keepsCopyright(spec) ? true : undefined,
    rotate: spec.rotate, flip: spec.flip,
    brightness: spec.brightness, contrast: spec.contrast, saturation: spec.saturation,
    describe: spec.describe,
  };
  for (const key of Object.keys(out) as (keyof TransformSpec)[]) if (out[key] === undefined) delete out[key];
  return out;
}

/** Only a JPEG can keep the tag (Cloudflare): an explicit other format makes it no part of the variant. */
function keepsCopyright(spec: TransformSpec): boolean {
  return spec.keepCopyright === true && !spec.keepMetadata && [undefined, 'auto', 'jpeg'].includes(spec.format);
}

/** `k=v&…` of the normalised spec, keys sorted; '' means "no transform" (the original bytes). */
export function canonicalSpec(spec: TransformSpec): string {
  const normal = normaliseSpec(spec);
  return (Object.keys(normal) as (keyof TransformSpec)[]).sort()
    .map((key) => `${key}=${String(normal[key])}`).join('&');
}

/** True when nothing about the output is requested: the original bytes are served. */
export function isIdentity(spec: TransformSpec): boolean {
  return canonicalSpec(spec) === '';
}
