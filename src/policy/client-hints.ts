/**
 * Client hints (issue #19 item 2): a request that names no size gets the width the browser's hints ask for.
 * - Eligible: `format=auto`/`output=auto`, or a transform without width and height (not the original bytes, not
 *   JSON). Their responses carry `Accept-CH`, so the browser sends the hints on its next image requests.
 * - `Sec-CH-Width` / legacy `Width` are the image's layout width in DEVICE pixels; without them, `Sec-CH-Viewport-Width`
 *   / `Viewport-Width` (CSS pixels) × `Sec-CH-DPR` / `DPR` bounds the image to the screen.
 * - A request that names a CSS width (an eligible `format=auto` one) and no `dpr` gets `DPR` applied, rounded up to
 *   DPR_STEPS (1, 1.5, 2, 3, 4: five variants at most).
 * - The width is rounded UP to IMGRELAY_ALLOWED_WIDTHS, or when none are set to LADDER, so the variants stay bounded,
 *   and the image is never enlarged past its source.
 * - `Vary` names exactly the hints used. Such responses depend on request headers that are not in the URL: the
 *   Node fast hit path must never learn them (image-route.ts).
 * Runs after the signature (hints are not part of the signed URL) and before the variant rules. Portable.
 */
import type { ImageRequest } from '../url/request.js';
import { isIdentity } from '../url/options.js';
import { roundUp } from './variants.js';
import type { ClientHintsConfig } from './client-hints-config.js';
import type { VariantRules } from './variants-config.js';

export const ACCEPT_CH = 'Sec-CH-DPR, Sec-CH-Width, Sec-CH-Viewport-Width';

/** Common srcset steps (the widths Next.js and most CMSs emit): at most 16 variants per source from hints. */
export const LADDER: readonly number[] = [16, 32, 48, 64, 96, 128, 256, 384, 640, 750, 828, 1080, 1200, 1920, 2048, 3840];

export const DPR_STEPS: readonly number[] = [1, 1.5, 2, 3, 4];

export interface HintedRequest {
  request: ImageRequest;
  /** Response headers to add (`Accept-CH`), or none when the request is not eligible. */
  acceptCh?: string;
  /** The hint headers that chose the width, as the response's Vary should name them. */
  vary: string[];
}

const NOT_HINTED = (request: ImageRequest): HintedRequest => ({ request, vary: [] });

export function isHintEligible(request: ImageRequest): boolean {
  const spec = request.options.spec;
  if (spec.describe || isIdentity(spec)) return false;
  return spec.format === 'auto' || (spec.width === undefined && spec.height === undefined);
}

/** A positive number from a header (`2`, `1.5`, `412`), else undefined. */
function number(headers: Headers, name: string): number | undefined {
  const value = Number(headers.get(name)?.trim() || NaN);
  return Number.isFinite(value) && value > 0 && value <= 100_000 ? value : undefined;
}

/** The first of `names` the request carries, with its value. */
function firstHint(headers: Headers, names: string[]): [string, number] | undefined {
  for (const name of names) {
    const value = number(headers, name);
    if (value !== undefined) return [name, value];
  }
  return undefined;
}

/** The device-pixel width the hints ask for, and the headers that said so. */
export function hintedWidth(headers: Headers): { width: number; used: string[] } | undefined {
  const width = firstHint(headers, ['Sec-CH-Width', 'Width']);
  if (width) return { width: Math.ceil(width[1]), used: [width[0]] };
  const viewport = firstHint(headers, ['Sec-CH-Viewport-Width', 'Viewport-Width']);
  if (!viewport) return undefined;
  const dpr = firstHint(headers, ['Sec-CH-DPR', 'DPR']);
  const used = dpr ? [viewport[0], dpr[0]] : [viewport[0]];
  return { width: Math.ceil(viewport[1] * (dpr?.[1] ?? 1)), used };
}

export function applyClientHints(
  request: ImageRequest, headers: Headers, config: ClientHintsConfig, rules: Pick<VariantRules, 'widths' | 'presetsOnly'>,
): HintedRequest {
  // Under IMGRELAY_PRESETS_ONLY a hinted width would turn a preset into an ad-hoc variant (refused): no hints.
  if (!config.enabled || rules.presetsOnly || !isHintEligible(request)) return NOT_HINTED(request);
  const spec = request.options.spec;
  if (spec.width !== undefined || spec.height !== undefined) return withDprHint(request, headers);
  const hint = hintedWidth(headers);
  if (!hint) return { request, acceptCh: ACCEPT_CH, vary: [] };
  const width = roundUp(hint.width, rules.widths.length > 0 ? rules.widths : LADDER)!;
  const { dpr: _device, ...rest } = spec; // the hint is in device pixels already
  const hinted = { ...rest, width, withoutEnlargement: true };
  return { request: { ...request, options: { ...request.options, spec: hinted } }, acceptCh: ACCEPT_CH, vary: hint.used };
}

/** A CSS width in the URL × the DPR hint (stepped), when the URL names no dpr of its own. */
function withDprHint(request: ImageRequest, headers: Headers): HintedRequest {
  const dpr = request.options.spec.dpr === undefined ? firstHint(headers, ['Sec-CH-DPR', 'DPR']) : undefined;
  if (!dpr) return { request, acceptCh: ACCEPT_CH, vary: [] };
  const stepped = roundUp(dpr[1], DPR_STEPS)!;
  const spec = { ...request.options.spec, dpr: stepped };
  return { request: { ...request, options: { ...request.options, spec } }, acceptCh: ACCEPT_CH, vary: [dpr[0]] };
}
