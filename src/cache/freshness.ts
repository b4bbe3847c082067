/** Freshness from the upstream's caching headers, clamped to the operator's bounds (DESIGN.md "Cache"). */
import type { SourceHeaders } from '../fetch/types.js';

export interface TtlBounds {
  minTtlS: number;
  maxTtlS: number;
}

/** Seconds of freshness the upstream granted, or undefined when it said nothing usable. */
export function upstreamTtlS(headers: SourceHeaders, now: number): number | undefined {
  const cc = parseCacheControl(headers.cacheControl);
  // Revalidate-every-time directives: keep the bytes (they are still the image) but treat them as stale at once;
  // the min TTL then decides how long we may serve them without asking.
  if (cc.has('no-store') || cc.has('no-cache') || cc.has('private')) return 0;
  const sMaxAge = toSeconds(cc.get('s-maxage'));
  const maxAge = toSeconds(cc.get('max-age'));
  if (sMaxAge !== undefined) return sMaxAge;
  if (maxAge !== undefined) return maxAge;
  if (headers.expires) {
    const expires = Date.parse(headers.expires);
    if (Number.isNaN(expires)) return 0;
    const date = headers.date ? Date.parse(headers.date) : now;
    return Math.max(0, Math.round((expires - (Number.isNaN(date) ? now : date)) / 1000));
  }
  return undefined;
}

/** Expiry (ms since epoch): the upstream's TTL clamped to [min, max]; no upstream hint = max. */
export function expiryFor(headers: SourceHeaders, now: number, bounds: TtlBounds): number {
  const ttl = upstreamTtlS(headers, now) ?? bounds.maxTtlS;
  return now + Math.min(bounds.maxTtlS, Math.max(bounds.minTtlS, ttl)) * 1000;
}

function parseCacheControl(value: string | undefined): Map<string, string | undefined> {
  const out = new Map<string, string | undefined>();
  for (const part of (value ?? '').split(',')) {
    const [name, arg] = part.split('=', 2).map((s) => s.trim());
    if (name) out.set(name.toLowerCase(), arg?.replace(/^"|"$/g, ''));
  }
  return out;
}

function toSeconds(value: string | undefined): number | undefined {
  if (value === undefined || !/^\d+$/.test(value)) return undefined;
  return Number(value);
}
