/**
 * Allowed variants (issue #16 item 2): the step of the caller policy that runs AFTER the signature check (which
 * covers the request as parsed, presets expanded, before any rounding) and before the image service. It turns a
 * request into one of the variants the operator allows, so `w=801`, `w=802`… are all the `w=1024` entry:
 * - widths and heights round UP to the next allowed value (never down: a layout asking 801 px must not get a
 *   smaller image), and the largest allowed value caps them;
 * - qualities go to the NEAREST allowed value (the higher on a tie); an absent `q` (the default) is left alone;
 * - the rules apply to the OUTPUT size, w × dpr: `w=400&dpr=2` is an 800-pixel image and rounds as 800 (then the
 *   spec carries the rounded output size and no dpr — normaliseSpec folds dpr the same way, so it is one key);
 * - IMGRELAY_PRESETS_ONLY: anything but the original bytes or exactly a preset's options is a 400 naming the presets.
 * Portable: no `node:`, no sharp.
 */
import { fail } from '../errors.js';
import type { TransformSpec } from '../transform/types.js';
import { type RequestOptions, canonicalSpec, targetSize } from '../url/options.js';
import type { ImageRequest } from '../url/request.js';
import type { VariantRules } from './variants-config.js';
import { parseLegacyWithPresets } from '../url/presets.js';

/** The request as the rules allow it: the same object when they change nothing. Throws 400 under presets-only. */
export function applyVariantRules(request: ImageRequest, rules: VariantRules): ImageRequest {
  const spec = request.options.spec;
  if (rules.presetsOnly) refuseAdHoc(spec, rules);
  if (rules.widths.length + rules.heights.length + rules.qualities.length === 0) return request; // the default
  const allowed = allowedSpec(spec, rules);
  return allowed === spec ? request : { ...request, options: { ...request.options, spec: allowed } };
}

/** Under presets-only: the original bytes, or exactly a preset's options (named or spelled out). */
const admitted = (spec: TransformSpec, rules: Pick<VariantRules, 'presetKeys'>) => {
  const canonical = canonicalSpec(spec);
  return canonical === '' || rules.presetKeys.includes(canonical);
};

function refuseAdHoc(spec: TransformSpec, rules: VariantRules): void {
  if (admitted(spec, rules)) return;
  fail('E_BAD_REQUEST', `Only presets are served here (IMGRELAY_PRESETS_ONLY): use p=<name> (query form) or `
    + `preset=<name> (path form) with one of: ${Object.keys(rules.presets).join(', ')}, and no other options`);
}

/**
 * IMGRELAY_LEGACY_OPTIONS parsed (presets expanded). Throws, saying why, when presets-only would refuse them: every
 * legacy URL (every old article's image) would be a 400, found in production; the caller reports it at start-up.
 */
export function parseLegacyUnderRules(text: string, rules?: VariantRules): RequestOptions {
  const options = parseLegacyWithPresets(text, rules?.presets);
  if (rules?.presetsOnly && !admitted(options.spec, rules)) {
    throw new Error('with IMGRELAY_PRESETS_ONLY=true every legacy /?<url> would be refused (400): name a preset '
      + `(p=<name>, one of: ${Object.keys(rules.presets).join(', ')}) or leave it empty`);
  }
  return options;
}

/** The spec with its output size and quality moved onto allowed values. */
export function allowedSpec(spec: TransformSpec, rules: VariantRules): TransformSpec {
  const { width, height } = targetSize(spec);
  const w = roundUp(width, rules.widths);
  const h = roundUp(height, rules.heights);
  const q = nearest(spec.quality, rules.qualities);
  // Nothing rounded: the request as it came (its dpr, if any, is folded into the key by normaliseSpec anyway).
  if (w === width && h === height && q === spec.quality) return spec;
  const { dpr: _folded, ...rest } = spec;
  const out: TransformSpec = { ...rest, width: w, height: h, quality: q };
  for (const key of ['width', 'height', 'quality'] as const) if (out[key] === undefined) delete out[key];
  return out;
}

/** The smallest allowed value ≥ `value`, else the largest allowed (the cap). */
export function roundUp(value: number | undefined, allowed: readonly number[]): number | undefined {
  if (value === undefined || allowed.length === 0) return value;
  return allowed.find((candidate) => candidate >= value) ?? allowed[allowed.length - 1];
}

/** The allowed value closest to `value`; on a tie the higher one (better quality rather than worse). */
export function nearest(value: number | undefined, allowed: readonly number[]): number | undefined {
  if (value === undefined || allowed.length === 0) return value;
  return allowed.reduce((best, candidate) =>
    Math.abs(candidate - value) < Math.abs(best - value) || (Math.abs(candidate - value) === Math.abs(best - value)
      && candidate > best) ? candidate : best);
}
