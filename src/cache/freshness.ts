/** Freshness from the upstream's caching headers, clamped to the operator's bounds (DESIGN.md "Cache"). */
import type { SourceHeaders } from '../fetch/types.js';

export interface TtlBounds {
  minTtlS: number;
  maxTtlS: number;
  /** When the upstream says nothing: an origin that promised nothing gets a day, not a year (README "Cache"). */
  defaultTtlS: number;
}

/**
 * Seconds of freshness the upstream granted from now, or undefined when it said nothing usable. An upstream behind
 * its own cache sends `Age`: that part of its lifetime is used up already (RFC 9111 §4.2.3).
 */
export function upstreamTtlS(headers: SourceHeaders, now: number): number | undefined {
  const cc = parseCacheControl(headers.cacheControl);
  // Revalidate-every-time directives: keep the bytes (they are still the image) but treat them as stale at once;
  // the min TTL then decides how long we may serve them without asking.
  if (cc.has('no-store') || cc.has('no-cache') || cc.has('private')) return 0;
  const lifetime = lifetimeS(cc, headers, now);
  return lifetime === undefined ? undefined : Math.max(0, lifetime - (toSeconds(headers.age) ?? 0));
}

/** The freshness lifetime the upstream stated: s-maxage (we are a shared cache), max-age, or Expires − Date. */
function lifetimeS(cc: Map<string, string | undefined>, headers: SourceHeaders, now: number): number | undefined {
  const sMaxAge = toSeconds(cc.get('s-maxage'));
  if (sMaxAge !== undefined) return sMaxAge;
  const maxAge = toSeconds(cc.get('max-age'));
  if (maxAge !== undefined) return maxAge;
  if (!headers.expires) return undefined;
  const expires = Date.parse(headers.expires);
  if (Number.isNaN(expires)) return 0;
  const date = headers.date ? Date.parse(headers.date) : now;
  return Math.max(0, Math.round((expires - (Number.isNaN(date) ? now : date)) / 1000));
}

/** Expiry (ms since epoch): the upstream's TTL clamped to [min, max]; no upstream hint = the default TTL, clamped. */
export function expiryFor(headers: SourceHeaders, now: number, bounds: TtlBounds): number {
  const ttl = upstreamTtlS(headers, now) ?? bounds.defaultTtlS;
  return now + Math.min(bounds.maxTtlS, Math.max(bounds.minTtlS, ttl)) * 1000;
}

/** Whether an entry expired more than `staleIfErrorS` ago: too old to stand in for an origin that fails. */
export function pastStaleIfError(meta: { expiresAt: number }, now: number, bounds: { staleIfErrorS: number }): boolean {
  return now - meta.expiresAt > bounds.staleIfErrorS * 1000;
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
