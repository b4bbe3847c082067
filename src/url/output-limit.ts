/**
 * IMGRELAY_MAX_OUTPUT_DIMENSION applied to the REQUEST, before it is keyed: `w=9000` and `w=4096` (the cap) produce
 * the same image, so they must be one cache entry, and `w=9001`, `w=9002`… must not each be a new one. The spec
 * handed on (key AND pipeline) is the capped one, so the bytes stored are always the bytes the key names; the
 * pipeline's own clamp (plan.ts `boundedBox`) then finds nothing left to shrink. Portable: no `node:`, no sharp.
 *
 * Why this gives the image the pipeline made before (up to a pixel of rounding):
 * - `cover`/`fill`/`contain` with both sides: the box IS the output, shrunk keeping its aspect ratio — the same
 *   arithmetic as boundedBox, done here with integers (the larger side becomes the cap exactly);
 * - `inside`, `outside` or one side only: the output is the source scaled by a factor bounded by max/side on each
 *   side, and capping each requested side at max bounds the factor the same way (min(a, M/sw) = min(min(w,M)/sw…)).
 */
import type { TransformSpec } from '../transform/types.js';
import { DEFAULTS, targetSize } from './options.js';

/** `spec` with its output box (dpr folded in) within `max` on each side; the same object when it already is. */
export function capOutputSize(spec: TransformSpec, max: number): TransformSpec {
  const { width, height } = targetSize(spec);
  if ((width ?? 0) <= max && (height ?? 0) <= max) return spec;
  const fit = spec.fit ?? DEFAULTS.fit;
  const box = width !== undefined && height !== undefined && fit !== 'inside' && fit !== 'outside'
    ? shrinkBox(width, height, max)
    : { width: width === undefined ? undefined : Math.min(width, max), height: height === undefined ? undefined : Math.min(height, max) };
  const { dpr: _folded, ...rest } = spec;
  const capped: TransformSpec = { ...rest, ...box };
  if (capped.width === undefined) delete capped.width;
  if (capped.height === undefined) delete capped.height;
  return capped;
}

/** The box scaled down so its larger side is `max`, the other floored (as boundedBox floors), at least 1. */
function shrinkBox(width: number, height: number, max: number): { width: number; height: number } {
  const larger = Math.max(width, height);
  // Integer product first, one division: exact, so the larger side is `max` itself, never max - 1 from rounding.
  const scale = (side: number) => (side === larger ? max : Math.max(1, Math.floor((side * max) / larger)));
  return { width: scale(width), height: scale(height) };
}
