/**
 * Cloudflare's `/cdn-cgi/image/<options>/` spelling: its option values, its defaults and the options it documents
 * that imgrelay refuses by name (docs/cloudflare-compat.md is the table, one test per row). The option TABLE itself
 * stays in options.ts; this module only knows Cloudflare's words. Portable: no `node:`, no sharp.
 */
import { fail } from '../errors.js';
import type { Gravity, OutputFormat, TransformSpec } from '../transform/types.js';
import { type Parser, badOption, flag, float, oneOf, parseOrFail } from './option-parsers.js';

/** Cloudflare `fit` → our fit, plus "never enlarge" where Cloudflare implies it. */
export const CF_FITS: Record<string, Partial<TransformSpec>> = {
  'scale-down': { fit: 'inside', withoutEnlargement: true }, contain: { fit: 'inside' }, cover: { fit: 'cover' },
  crop: { fit: 'cover', withoutEnlargement: true }, pad: { fit: 'contain' }, squeeze: { fit: 'fill' },
};

const CF_FORMATS: Record<string, OutputFormat | 'auto' | 'json'> = {
  auto: 'auto', avif: 'avif', webp: 'webp', jpeg: 'jpeg', 'baseline-jpeg': 'jpeg', png: 'png', gif: 'gif', json: 'json',
};

/** `format=json` answers the image's metadata in Cloudflare's JSON shape instead of the image. */
export function cfFormat(raw: string, name: string): Partial<TransformSpec> {
  const format = parseOrFail(oneOf(CF_FORMATS), raw, name);
  return format === 'json' ? { describe: 'cloudflare' } : { format };
}

const SIDES: Record<string, Gravity> = {
  auto: 'attention', center: 'center', centre: 'center', left: 'left', right: 'right', top: 'top', bottom: 'bottom',
};
/** Coordinates `XxY` (0…1 each) that land exactly on one of libvips' nine positions. */
const COORDINATES: Record<string, Gravity> = {
  '0x0': 'top-left', '0.5x0': 'top', '1x0': 'top-right', '0x0.5': 'left', '0.5x0.5': 'center', '1x0.5': 'right',
  '0x1': 'bottom-left', '0.5x1': 'bottom', '1x1': 'bottom-right',
};

/**
 * `gravity`: auto (saliency), the side names, and `XxY` coordinates on the nine positions (0, 0.5, 1). Other
 * coordinates and `face` are refused by name: sharp crops around a point only at those nine positions.
 */
export const cfGravity: Parser<Gravity> = {
  expected: `auto, left, right, top, bottom, center, or XxY coordinates with X and Y each 0, 0.5 or 1 (${
    'other coordinates and face are not supported'})`,
  parse: (raw) => {
    const value = raw.trim().toLowerCase();
    if (Object.hasOwn(SIDES, value)) return SIDES[value];
    const m = /^(\d*\.?\d+)x(\d*\.?\d+)$/.exec(value);
    return m ? COORDINATES[`${Number(m[1])}x${Number(m[2])}`] : undefined;
  },
};

const CF_METADATA: Record<string, Pick<TransformSpec, 'keepMetadata' | 'keepCopyright'>> = {
  keep: { keepMetadata: true }, copyright: { keepMetadata: false, keepCopyright: true },
  none: { keepMetadata: false, keepCopyright: false },
};

/**
 * `metadata`: `keep` keeps EXIF and XMP; `copyright` (Cloudflare's default, see CF_DEFAULTS) keeps only the EXIF
 * copyright tag in a JPEG output; `none` strips everything.
 */
export const cfMetadata = (raw: string, name: string): Partial<TransformSpec> =>
  ({ ...parseOrFail(oneOf(CF_METADATA), raw, name) });

/** `anim=false` keeps the first frame; `anim=true` (the default) keeps the animation. */
export const cfAnim = (raw: string, name: string): Partial<TransformSpec> => ({ pages: parseOrFail(flag, raw, name) ? -1 : 1 });

/** `width=auto` means "no width from the URL": client hints, when enabled, supply it (client-hints.ts). */
export const cfDimension = (field: 'width' | 'height', parser: Parser<number>) => (raw: string, name: string): Partial<TransformSpec> =>
  (field === 'width' && raw.trim().toLowerCase() === 'auto' ? {} : { [field]: parseOrFail(parser, raw, name) });

/** Cloudflare's own defaults, applied to a path-form request that transforms (after presets, under explicit ones). */
export const CF_DEFAULTS = { quality: 85, pages: -1, keepCopyright: true } as const;

/**
 * Options Cloudflare documents that imgrelay does not implement: refused by name (400) rather than ignored, so a
 * migrated page never silently gets a different image. `trim.*` and `border.*` sub-options count as their parent.
 */
export const CF_UNSUPPORTED: ReadonlySet<string> = new Set([
  'gamma', 'trim', 'border', 'compression', 'zoom',
  'segment', 'slow-connection-quality', 'draw', 'origin-auth',
]);

export function refuseUnsupported(name: string): void {
  const parent = name.split('.', 1)[0];
  if (CF_UNSUPPORTED.has(parent)) {
    fail('E_BAD_REQUEST', `The Cloudflare option "${name}" is not supported by imgrelay (docs/cloudflare-compat.md)`);
  }
}

/** `onerror=redirect`: on a source error, a 302 to the source URL instead of an error. */
export function parseOnError(raw: string): boolean {
  if (raw.trim().toLowerCase() !== 'redirect') badOption('onerror', 'redirect', raw);
  return true;
}

/** `rotate`: quarter turns only (Cloudflare documents 90, 180 and 270; 0 is no rotation). */
export const cfRotate: Parser<0 | 90 | 180 | 270> = oneOf({ '0': 0, '90': 90, '180': 180, '270': 270 } as const);
export const cfFlip: Parser<'h' | 'v' | 'hv'> = oneOf({ h: 'h', v: 'v', hv: 'hv', vh: 'hv' } as const);

/** `brightness`, `contrast`, `saturation`: factors, 1 = no change (dropped from the key), bounded so none is absurd. */
export const cfFactor = (field: 'brightness' | 'contrast' | 'saturation') => (raw: string, name: string): Partial<TransformSpec> => {
  const value = parseOrFail(float(field === 'saturation' ? 0 : 0.01, 10), raw, name);
  return { [field]: value === 1 ? undefined : value };
};
