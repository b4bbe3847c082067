/**
 * Hotlink placeholder signatures, as data in the header rules (header-rules.ts): some CDNs answer a foreign or
 * missing Referer with 200 and a stand-in picture (WeChat's "not allowed to quote", Weibo's), which a relay would
 * otherwise cache as the article's image. A rule lists the placeholders its host is known to send, each either
 * exactly (`bytes` + `sha256`: the file as served) or perceptually (`width` + `height` + `dhash`: the same picture
 * re-encoded or recompressed by the CDN). Portable (no `node:` imports).
 */
import { z } from 'zod';

/** The exact file: its length is compared first, so the digest runs only on a body of exactly that size. */
export interface ExactPlaceholder {
  bytes: number;
  /** Lower-case hex SHA-256 of the body. */
  sha256: string;
  why?: string;
}

/** The picture: its header size is compared first, so only a body of exactly these dimensions is ever decoded. */
export interface PerceptualPlaceholder {
  width: number;
  height: number;
  /** 64-bit difference hash (16 hex digits) of the picture: see src/transform/dhash.ts. */
  dhash: string;
  /** Hamming distance (of 64 bits) up to which a body still matches; default DEFAULT_DHASH_DISTANCE. */
  distance?: number;
  why?: string;
}

export type PlaceholderSignature = ExactPlaceholder | PerceptualPlaceholder;

/**
 * Measured (src/transform/dhash.ts): re-encodes of one placeholder (JPEG and WebP, q20–95) differ by 0–3 bits; each
 * test fixture squeezed to the placeholder's size differs by 15 or more. 6 keeps a margin on both sides.
 */
export const DEFAULT_DHASH_DISTANCE = 6;
/** Beyond this, a perceptual entry would match pictures that merely share a layout. */
export const MAX_DHASH_DISTANCE = 16;

const exactSchema = z.object({
  bytes: z.number().int().positive(),
  sha256: z.string().regex(/^[0-9a-fA-F]{64}$/, '64 hex digits (sha256sum of the placeholder file)')
    .transform((hex) => hex.toLowerCase()),
  why: z.string().optional(),
}).strict();

const perceptualSchema = z.object({
  width: z.number().int().positive().max(65535),
  height: z.number().int().positive().max(65535),
  dhash: z.string().regex(/^[0-9a-fA-F]{16}$/, '16 hex digits (imgrelay placeholder-hash <file>)')
    .transform((hex) => hex.toLowerCase()),
  distance: z.number().int().min(0).max(MAX_DHASH_DISTANCE).optional(),
  why: z.string().optional(),
}).strict();

export const placeholderSchema = z.union([exactSchema, perceptualSchema], {
  error: () => 'a placeholder is {"bytes", "sha256"} or {"width", "height", "dhash", "distance"?}',
});

export const isExact = (entry: PlaceholderSignature): entry is ExactPlaceholder => 'sha256' in entry;

/** Bits that differ between two 64-bit hashes given as hex. */
export function hammingDistance(a: bigint, b: bigint): number {
  let diff = a ^ b;
  let count = 0;
  while (diff > 0n) {
    count += Number(diff & 1n);
    diff >>= 1n;
  }
  return count;
}
