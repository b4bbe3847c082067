/**
 * The sharp pipeline as a LIST OF NAMED STEPS (imgproxy style), one small function each, applied in order after
 * `probe` (plan.ts) has refused what must not be decoded and planned the rest. Node only.
 */
import sharp, { type Sharp } from 'sharp';
import type { Gravity, OutputFormat } from './types.js';
import type { PipelineLimits, Plan } from './plan.js';
import { DEFAULTS } from '../url/options.js';

export type Step = (image: Sharp, plan: Plan, limits: PipelineLimits) => Sharp;

/**
 * Input options: the decoder enforces the planned pixel budget itself (defence in depth behind the header check).
 * `failOn: 'error'` refuses truncated and corrupt data (422) yet accepts files with mere warnings, such as the
 * "extraneous bytes before marker" that many camera JPEGs carry; 'none' would serve half-grey images.
 */
export function decode(source: Uint8Array, plan: Plan): Sharp {
  return sharp(source, {
    failOn: 'error',
    limitInputPixels: plan.pixelLimit,
    pages: plan.pages,
    density: plan.density,
    sequentialRead: true,
  });
}

/** (b) EXIF orientation applied to the pixels (and the tag removed), so every viewer shows the same thing. */
const orient: Step = (image) => image.autoOrient();

/** Cloudflare `rotate` then `flip`, after orientation and before resizing (the box refers to the turned axes). */
const turn: Step = (image, plan) => {
  let out = plan.spec.rotate ? image.rotate(plan.spec.rotate) : image;
  if (plan.spec.flip === 'v' || plan.spec.flip === 'hv') out = out.flip();
  if (plan.spec.flip === 'h' || plan.spec.flip === 'hv') out = out.flop();
  return out;
};

const ALPHA_OUTPUTS: ReadonlySet<OutputFormat> = new Set(['png', 'webp', 'avif', 'gif']);

const POSITIONS: Record<Gravity, string> = {
  center: 'centre', top: 'top', right: 'right', bottom: 'bottom', left: 'left',
  'top-left': 'left top', 'top-right': 'right top', 'bottom-left': 'left bottom', 'bottom-right': 'right bottom',
  attention: 'attention', entropy: 'entropy',
};

function position(gravity: Gravity | undefined, plan: Plan): string | number {
  const g = gravity ?? DEFAULTS.gravity;
  if (g === 'attention' || g === 'entropy') {
    // Smart crops exist for cover only (contain pads around the centre), and libvips has none for a multi-page
    // image: an animation is cropped around the centre of every frame (documented in the README).
    return plan.fit === 'cover' && plan.pages === 1 ? sharp.strategy[g] : 'centre';
  }
  return POSITIONS[g];
}

/**
 * `contain`'s padding: transparent (or `bg`) where the output keeps alpha; opaque `bg`, white by default, where it
 * cannot. sharp flattens before it pads, so transparent padding would come out black in a JPEG.
 */
function padding(plan: Plan): string {
  if (ALPHA_OUTPUTS.has(plan.output)) return plan.spec.background ?? '#ffffff00';
  return (plan.spec.background ?? '#ffffff').slice(0, 7);
}

/** (c) Resize into the planned box (dpr applied and clamped to the output limit by the plan). */
const resize: Step = (image, plan) => {
  const { width, height } = plan.box;
  if (width === undefined && height === undefined) return image;
  return image.resize({
    width, height, fit: plan.fit,
    position: position(plan.spec.gravity, plan),
    withoutEnlargement: plan.spec.withoutEnlargement === true,
    // Only `contain` pads, and sharp parses a colour on every call that has one (measurable on a cold miss).
    ...(plan.fit === 'contain' ? { background: padding(plan) } : {}),
  });
};

/**
 * Cloudflare's colour factors: brightness and saturation through libvips' LCh modulate, contrast as a linear
 * stretch around mid-grey (128), which keeps mid-tones where they are.
 */
function adjust(image: Sharp, plan: Plan): Sharp {
  const { brightness, contrast, saturation } = plan.spec;
  let out = image;
  if (brightness !== undefined || saturation !== undefined) {
    // sharp refuses an `undefined` key: only the factors asked for.
    out = out.modulate({ ...(brightness === undefined ? {} : { brightness }), ...(saturation === undefined ? {} : { saturation }) });
  }
  if (contrast !== undefined) out = out.linear(contrast, 128 * (1 - contrast));
  return out;
}

const effects: Step = (image, plan) => {
  let out = adjust(image, plan);
  if (plan.spec.blur !== undefined) out = out.blur(Math.max(0.3, plan.spec.blur));
  if (plan.spec.sharpen !== undefined) out = out.sharpen({ sigma: plan.spec.sharpen });
  return out;
};

/**
 * JPEG has no alpha: composite onto the requested background (opaque part of `bg`), white by default. Only when
 * the source has alpha (contain's padding is opaque already for such outputs).
 */
const flatten: Step = (image, plan) => {
  if (ALPHA_OUTPUTS.has(plan.output) || !plan.hasAlpha) return image;
  const background = (plan.spec.background ?? '#ffffff').slice(0, 7);
  return image.flatten({ background });
};

/**
 * (d) Colour: pixels CONVERTED (not just re-tagged) from the embedded ICC profile (Display P3, Rec.2020, CMYK…)
 * to sRGB — sharp does this through lcms whenever the input profile is not kept — and cast to 8 bits per channel.
 */
const colour: Step = (image) => image.toColourspace('srgb');

/**
 * Metadata is stripped by default (privacy: GPS, camera serials). `metadata=keep` keeps EXIF and XMP and
 * attaches an sRGB profile that matches the converted pixels (never the source's profile, which would lie now).
 * `metadata=copyright` writes a fresh EXIF holding the source's copyright tag alone (plan.ts found it, JPEG only).
 */
const metadata: Step = (image, plan) => {
  if (plan.spec.keepMetadata) return image.keepExif().keepXmp().withIccProfile('srgb');
  return plan.copyright ? image.withExif({ IFD0: { Copyright: plan.copyright } }) : image;
};

/**
 * `q` is JPEG-equivalent for every lossy format. AVIF reaches the same fidelity at a lower nominal quality
 * (measured: 800w photo, AVIF 65 ≈ JPEG 80 in mean pixel error at ~62% of the bytes; AVIF 80 is as large as
 * JPEG 80), so q maps piecewise-linearly: 0…80 → 0…65, 80…100 → 65…100.
 */
export function avifQuality(q: number): number {
  return Math.round(q <= 80 ? (q * 65) / 80 : 65 + ((q - 80) * 35) / 20);
}

/** (e) Encode. One `q` for every lossy format (default 80); AVIF effort from config (speed matters, see bench). */
const encode: Step = (image, plan, limits) => {
  const quality = plan.spec.quality ?? DEFAULTS.quality;
  const progressive = plan.spec.interlace === true;
  switch (plan.output) {
    case 'jpeg': return image.jpeg({ quality, progressive, mozjpeg: false });
    case 'png': return image.png({ progressive, compressionLevel: 6 });
    case 'webp': return image.webp({ quality, effort: 4 });
    case 'avif': return image.avif({ quality: avifQuality(quality), effort: limits.avifEffort });
    case 'gif': return image.gif({ progressive, effort: plan.gifEffort });
  }
};

/** The named steps, in order. The names appear in debug logs and make the order reviewable at a glance. */
export const STEPS: ReadonlyArray<readonly [string, Step]> = [
  ['orient', orient],
  ['turn', turn],
  ['resize', resize],
  ['effects', effects],
  ['flatten', flatten],
  ['colour', colour],
  ['metadata', metadata],
  ['encode', encode],
];

export function applySteps(image: Sharp, plan: Plan, limits: PipelineLimits): Sharp {
  return STEPS.reduce((current, [, step]) => step(current, plan, limits), image)
    .timeout({ seconds: limits.transformTimeoutS });
}
