/**
 * Hotlink placeholders as refusals: a SourceFetcher wrapper that checks a fetched body against the placeholder
 * signatures of the rules matching its host (placeholder-rules.ts) before anything sniffs, transforms or stores it.
 * A match is retried once with the rules' `alternate` headers when they have some; otherwise (or when the retry
 * brings the placeholder again) it is `502 E_UPSTREAM_PLACEHOLDER`. The error is thrown from the fetch, so the
 * placeholder never becomes an entry: not in memory, not in the store, not in the negative cache (it is not one of the
 * remembered codes: the next request asks the origin again), and a stale entry stays what it was.
 *
 * Cost for ordinary images: the matching rules (one glob test per rule), then a length comparison per exact entry and
 * a header read (a few bytes) when there are perceptual entries. Only a body of an entry's exact length is digested,
 * and only one of an entry's exact pixel size is decoded. Portable: the decoder is injected (sharp on Node).
 */
import { RelayError } from '../errors.js';
import { readHeaderSize } from '../transform/header-size.js';
import { type HeaderRule, matchingRules } from './header-rules.js';
import {
  DEFAULT_DHASH_DISTANCE, hammingDistance, isExact, type PerceptualPlaceholder, type PlaceholderSignature,
} from './placeholder-rules.js';
import type { SourceFetcher, SourceRequest, SourceResponse } from './types.js';

export interface PlaceholderGuardDeps {
  rules: readonly HeaderRule[];
  /** 64-bit difference hash of a body (src/transform/dhash.ts); absent, perceptual entries are skipped (Workers). */
  dhash?: (body: Uint8Array) => Promise<bigint | undefined>;
  /** Each placeholder seen: `retried` (the alternate headers get one more try) or `refused` (502). */
  onPlaceholder?: (host: string, outcome: 'retried' | 'refused') => void;
}

/** `fetcher` as it is when no rule lists a placeholder; otherwise wrapped. */
export function guardPlaceholders(fetcher: SourceFetcher, deps: PlaceholderGuardDeps): SourceFetcher {
  if (!deps.rules.some((rule) => rule.placeholders?.length)) return fetcher;
  return {
    fetch: (request) => fetchRefusingPlaceholders(fetcher, request, deps),
    close: fetcher.close && (() => fetcher.close!()),
  };
}

async function fetchRefusingPlaceholders(fetcher: SourceFetcher, request: SourceRequest, deps: PlaceholderGuardDeps)
  : Promise<SourceResponse> {
  const first = await fetcher.fetch(request);
  if (!(await isPlaceholder(first, request.url, deps))) return first;
  const host = request.url.hostname;
  if (request.alternate || !matchingRules(request.url, deps.rules).some((rule) => rule.alternate)) {
    deps.onPlaceholder?.(host, 'refused');
    throw refusal(host);
  }
  deps.onPlaceholder?.(host, 'retried');
  const second = await fetcher.fetch({ ...request, alternate: true });
  if (!(await isPlaceholder(second, request.url, deps))) return second;
  deps.onPlaceholder?.(host, 'refused');
  throw refusal(host, ' (also with the alternate headers)');
}

const refusal = (host: string, retried = '') => new RelayError('E_UPSTREAM_PLACEHOLDER',
  `${host} answered with its hotlink placeholder instead of the image${retried}`);

/** Whether the body is a placeholder listed by a rule of the requested host or of the host that finally served it. */
async function isPlaceholder(response: SourceResponse, requested: URL, deps: PlaceholderGuardDeps): Promise<boolean> {
  if (response.notModified) return false;
  const entries = signaturesFor(requested, deps.rules);
  if (response.finalUrl !== requested.href) entries.push(...signaturesFor(new URL(response.finalUrl), deps.rules));
  return entries.length > 0 && matchesAny(response.body, entries, deps.dhash);
}

function signaturesFor(url: URL, rules: readonly HeaderRule[]): PlaceholderSignature[] {
  return matchingRules(url, rules).flatMap((rule) => rule.placeholders ?? []);
}

/** Exact entries by length then digest; perceptual ones by header size then (once) by hash. */
export async function matchesAny(body: Uint8Array, entries: readonly PlaceholderSignature[],
  dhash?: PlaceholderGuardDeps['dhash']): Promise<boolean> {
  const exact = entries.filter(isExact).filter((entry) => entry.bytes === body.byteLength);
  if (exact.length > 0) {
    const digest = await sha256Hex(body);
    if (exact.some((entry) => entry.sha256 === digest)) return true;
  }
  const perceptual = entries.filter((entry): entry is PerceptualPlaceholder => !isExact(entry));
  if (perceptual.length === 0 || !dhash) return false;
  const size = readHeaderSize(body);
  const sameSize = perceptual.filter((entry) => entry.width === size?.width && entry.height === size?.height);
  if (sameSize.length === 0) return false;
  const hash = await dhash(body);
  return hash !== undefined && sameSize.some((entry) =>
    hammingDistance(hash, BigInt(`0x${entry.dhash}`)) <= (entry.distance ?? DEFAULT_DHASH_DISTANCE));
}

async function sha256Hex(body: Uint8Array): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', body as Uint8Array<ArrayBuffer>));
  return Array.from(digest, (byte) => byte.toString(16).padStart(2, '0')).join('');
}
