/**
 * Cache keys (DESIGN.md "Cache"): `<sha256(canonical source URL)>/source` for the original bytes and
 * `<sha256(canonical source URL)>/<sha256(variant material)>` for each variant, so one prefix holds every variant
 * of a source. The Host header and signatures never enter a key. Web Crypto keeps this portable (Node and Workers).
 */

import { LRUCache } from 'lru-cache';

/** Bump when the pipeline's output for the same options changes, so old variants are not served. */
export const PIPELINE_VERSION = 2; // 2: contain pads JPEG output with bg/white (was black)

export const SOURCE_VARIANT = 'source';

const hex = (buf: ArrayBuffer) => {
  let out = '';
  for (const byte of new Uint8Array(buf)) out += byte.toString(16).padStart(2, '0');
  return out;
};

/**
 * Digests of recent URLs and variants. One miss hashes its source URL three times (source key, variant key,
 * surrogate keys) and every store hit hashes both again; a Web Crypto digest costs tens of microseconds of
 * main-thread work, a lookup here almost nothing.
 *
 * Bounded in BYTES, not only in entries: a URL may be IMGRELAY_MAX_URL_BYTES long, so 20,000 long URLs would be
 * hundreds of MB — an isolate has 128 MB in all (docs/edge.md). Each entry counts its key (UTF-16), its digest
 * and the map's own overhead; the least recently used go first.
 */
export const DIGEST_CACHE_MAX_BYTES = 4 * 1024 * 1024;
/** Per entry besides the key: the 64-character hex digest (UTF-16), its promise and the LRU's slots. */
const DIGEST_ENTRY_OVERHEAD_BYTES = 256;
const digests = new LRUCache<string, Promise<string>>({
  max: 20_000,
  maxSize: DIGEST_CACHE_MAX_BYTES,
  sizeCalculation: (_digest, text) => text.length * 2 + DIGEST_ENTRY_OVERHEAD_BYTES,
});

/** What the digest cache holds now (entries, counted bytes), for tests and stats. */
export function digestCacheStats(): { entries: number; bytes: number } {
  return { entries: digests.size, bytes: digests.calculatedSize };
}

/** Hex SHA-256 of a string. Portable default: `sha256Hex` (Web Crypto); Node wires node:crypto's (same value). */
export type TextDigest = (text: string) => string | Promise<string>;

export function sha256Hex(text: string): Promise<string> {
  let digest = digests.get(text);
  if (!digest) {
    digest = crypto.subtle.digest('SHA-256', new TextEncoder().encode(text)).then(hex);
    digests.set(text, digest);
  }
  return digest;
}

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
export async function storeKey(key: CacheKey, digest: TextDigest = sha256Hex): Promise<string> {
  const prefix = await digest(key.source);
  return key.variant === SOURCE_VARIANT ? `${prefix}/${SOURCE_VARIANT}` : `${prefix}/${await digest(key.variant)}`;
}

/** Our strong ETag for a body: a content hash, so every instance and every tier agrees on it. */
export async function etagOf(body: Uint8Array): Promise<string> {
  const digest = await crypto.subtle.digest('SHA-256', body as Uint8Array<ArrayBuffer>);
  return `"${hex(digest).slice(0, 32)}"`;
}
