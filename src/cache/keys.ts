/**
 * Cache keys (DESIGN.md "Cache"): `<sha256(canonical source URL)>/source` for the original bytes and
 * `<sha256(canonical source URL)>/<sha256(variant material)>` for each variant, so one prefix holds every variant
 * of a source. The Host header and signatures never enter a key. Web Crypto keeps this portable (Node and Workers).
 */

import { LRUCache } from 'lru-cache';

/** Bump when the pipeline's output for the same options changes, so old variants are not served. */
export const PIPELINE_VERSION = 1;

export const SOURCE_VARIANT = 'source';

const hex = (buf: ArrayBuffer) => {
  let out = '';
  for (const byte of new Uint8Array(buf)) out += byte.toString(16).padStart(2, '0');
  return out;
};

export async function sha256Hex(text: string): Promise<string> {
  return hex(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(text)));
}

/** Store keys of recent requests: every store hit would otherwise hash its URL and variant again. */
const storeKeys = new LRUCache<string, string>({ max: 10_000 });

/**
 * What distinguishes a variant: canonical options, the output-format bucket (for negotiated requests) and the
 * pipeline version. The untransformed original is the variant `source`.
 */
export function variantMaterial(canonicalSpec: string, formatBucket: string | undefined): string {
  if (canonicalSpec === '') return SOURCE_VARIANT;
  return `${canonicalSpec}|${formatBucket ?? ''}|v${PIPELINE_VERSION}`;
}

export interface CacheKey {
  /** Canonical source URL. */
  source: string;
  /** `source` or the variant material. */
  variant: string;
  /** Key of the memory tier: cheap to build (no hashing on the hit path). */
  memory: string;
}

export function cacheKey(source: string, variant: string): CacheKey {
  return { source, variant, memory: `${variant}\n${source}` };
}

/** Key in the persistent store: `<source hash>/source` or `<source hash>/<variant hash>`. */
export async function storeKey(key: CacheKey): Promise<string> {
  const known = storeKeys.get(key.memory);
  if (known) return known;
  const prefix = await sha256Hex(key.source);
  const hashed = key.variant === SOURCE_VARIANT ? `${prefix}/${SOURCE_VARIANT}` : `${prefix}/${await sha256Hex(key.variant)}`;
  storeKeys.set(key.memory, hashed);
  return hashed;
}

/** Our strong ETag for a body: a content hash, so every instance and every tier agrees on it. */
export async function etagOf(body: Uint8Array): Promise<string> {
  const digest = await crypto.subtle.digest('SHA-256', body as Uint8Array<ArrayBuffer>);
  return `"${hex(digest).slice(0, 32)}"`;
}
