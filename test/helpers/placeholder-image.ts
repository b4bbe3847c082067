/**
 * A stand-in for a CDN's hotlink placeholder ("this picture is not allowed to be quoted"), drawn with sharp: a grey
 * card with a pictogram and bars where the text would be. Real placeholders are not redistributable; this has the
 * same kind of content (flat fills, a few strong edges) that makes perceptual matching of re-encodes plausible.
 */
import sharp from 'sharp';

export const PLACEHOLDER_SIZE = { width: 300, height: 200 } as const;

const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="300" height="200">
  <rect width="300" height="200" fill="#eeeeee"/>
  <circle cx="150" cy="70" r="34" fill="#9a9a9a"/>
  <rect x="138" y="48" width="24" height="30" rx="4" fill="#eeeeee"/>
  <rect x="146" y="84" width="8" height="8" fill="#eeeeee"/>
  <rect x="60" y="128" width="180" height="14" rx="3" fill="#555555"/>
  <rect x="90" y="152" width="120" height="10" rx="3" fill="#888888"/>
</svg>`;

/** The placeholder as the CDN serves it (PNG). */
export function placeholderPng(): Promise<Buffer> {
  return sharp(Buffer.from(svg)).png().toBuffer();
}

/** The same picture re-encoded, as a CDN's image pipeline hands it out in another format or quality. */
export async function placeholderReencoded(format: 'jpeg' | 'webp', quality: number): Promise<Buffer> {
  return sharp(await placeholderPng())[format]({ quality }).toBuffer();
}
