/**
 * The 64-bit difference hash ("dHash") of a picture, for hotlink placeholder entries (src/fetch/placeholder-rules.ts):
 * the picture flattened on white, greyscale, squeezed to 9×8 (bilinear), and one bit per pair of horizontal neighbours
 * (is the right one brighter by more than FLAT?). Node only (sharp): the Workers build checks exact entries only.
 *
 * Placeholders are mostly flat fills, where plain dHash (`right > left`) flips bits on encoder noise: measured on the
 * test placeholder, WebP re-encodes differed by 12 bits with sharp's default kernel. Bilinear and a dead zone of 2
 * levels: JPEG q20–95 and WebP q20–95 re-encodes 0–3 bits, every test fixture squeezed to the same size ≥ 15.
 */
import sharp from 'sharp';

const COLUMNS = 9;
const ROWS = 8;
/** Neighbours closer than this (of 255) count as equal: flat areas read the same however they were encoded. */
const FLAT = 2;

/**
 * Decoding is bounded by `maxPixels` (the caller has already read the header size, so this is a backstop against a
 * header that lies); undefined when the body does not decode.
 */
export async function differenceHash(body: Uint8Array, maxPixels = 4096 * 4096): Promise<bigint | undefined> {
  try {
    const { data, info } = await sharp(body, { limitInputPixels: maxPixels, failOn: 'none', pages: 1 })
      .flatten({ background: '#ffffff' })
      .greyscale()
      .resize(COLUMNS, ROWS, { fit: 'fill', kernel: 'linear' })
      .raw()
      .toBuffer({ resolveWithObject: true });
    return hashOf(data, info.channels);
  } catch {
    return undefined;
  }
}

function hashOf(grey: Uint8Array, channels: number): bigint {
  let hash = 0n;
  for (let y = 0; y < ROWS; y++) {
    for (let x = 0; x < COLUMNS - 1; x++) {
      const left = grey[(y * COLUMNS + x) * channels];
      const right = grey[(y * COLUMNS + x + 1) * channels];
      hash = (hash << 1n) | (right > left + FLAT ? 1n : 0n);
    }
  }
  return hash;
}

/** The hash as the 16 hex digits a rule file holds. */
export const dhashHex = (hash: bigint) => hash.toString(16).padStart(16, '0');
