/**
 * The `Cache-Control` and `Age` of an image response: what browsers and CDNs may keep, derived from the entry's
 * own freshness (DESIGN.md "Cache", precedence; README "Freshness downstream"). Pure and portable.
 *
 * HTTP caches keep a response for `max-age − Age` (RFC 9111 §4.2). `Age` is the time since the entry was fetched
 * (or last revalidated), so the directives are lifetimes counted from that moment, like the origin's own: a source
 * the upstream marks `max-age=60` goes out as `max-age=60, Age: 25` and a cache keeps it 35 more seconds. Sending
 * the remaining 35 as `max-age` beside `Age: 25` would make every cache subtract the age twice (Varnish would keep
 * it 10 s, and nothing at all past half its life). So every bound below applies to what a cache derives, from now:
 *   kept(shared)  = min(remaining, configured s-maxage (or max-age))
 *   kept(browser) = min(remaining, configured max-age, the request's `maxage=`)
 * and a STALE response may be kept STALE_MAX_AGE_S instead of `remaining` (which is 0): long enough to spare the
 * origin a burst while it is being asked again, short enough that the revalidated bytes follow soon.
 * `stale-if-error` is at most `IMGRELAY_STALE_IF_ERROR_S`; other configured directives pass as they are.
 * Everything is whole seconds (integer math): the fast hit path recomputes this only when an entry's age changes.
 */

/** Seconds a downstream cache may keep a STALE response as fresh. */
export const STALE_MAX_AGE_S = 60;

/** The configured Cache-Control, parsed once: its numbers are ceilings, its other directives pass through. */
export interface CachePolicy {
  /** Directives in their configured order (names lower-cased), to rebuild the header with computed values. */
  readonly directives: readonly { name: string; text: string }[];
  readonly maxAgeS?: number;
  readonly sMaxAgeS?: number;
  /** The configured stale-if-error, already bounded by `IMGRELAY_STALE_IF_ERROR_S`. */
  readonly staleIfErrorS?: number;
  /** `no-store` configured: nothing to bound, the header goes out as configured. */
  readonly verbatim?: string;
  /** The request's `maxage=` (weserv): lowers the browser's max-age only, never raises it. */
  readonly requestMaxAgeS?: number;
}

/** The freshness fields of an entry (EntryMeta). */
export interface FreshnessMeta {
  storedAt: number;
  expiresAt: number;
  /** The lifetime granted at the last fetch or revalidation (ms): expiresAt − ttlMs is when that happened. */
  ttlMs?: number;
}

export interface ResponseFreshness {
  cacheControl: string;
  /** Whole seconds since the entry was fetched or last revalidated. */
  age: string;
}

export function cachePolicy(configured: string, staleIfErrorBoundS: number): CachePolicy {
  const directives = configured.split(',').map((part) => part.trim()).filter(Boolean).map((text) => ({
    name: text.split('=', 1)[0].trim().toLowerCase(), text,
  }));
  const seconds = (name: string) => {
    const text = directives.find((d) => d.name === name)?.text;
    const value = text?.slice(text.indexOf('=') + 1).trim().replace(/^"|"$/g, '');
    return value !== undefined && /^\d+$/.test(value) ? Number(value) : undefined;
  };
  const staleIfError = seconds('stale-if-error');
  return {
    directives,
    maxAgeS: seconds('max-age'),
    sMaxAgeS: seconds('s-maxage'),
    staleIfErrorS: staleIfError === undefined ? undefined : Math.min(staleIfError, staleIfErrorBoundS),
    verbatim: directives.some((d) => d.name === 'no-store') ? configured : undefined,
  };
}

/** The policy for a request with `maxage=` (undefined: the configured one as it is). */
export function withRequestMaxAge(policy: CachePolicy, maxAgeS: number | undefined): CachePolicy {
  return maxAgeS === undefined ? policy : { ...policy, requestMaxAgeS: maxAgeS };
}

/** Whole seconds since `meta` was fetched or last revalidated at `now` (never negative). */
export function ageOf(meta: FreshnessMeta, now: number): number {
  const fetchedAt = meta.ttlMs === undefined ? meta.storedAt : meta.expiresAt - meta.ttlMs;
  return Math.max(0, Math.floor((now - fetchedAt) / 1000));
}

/** Cache-Control and Age for `meta` served at `now` (`stale`: served past its expiry, X-Cache: STALE). */
export function responseFreshness(meta: FreshnessMeta, now: number, policy: CachePolicy, stale: boolean): ResponseFreshness {
  const ageS = ageOf(meta, now);
  if (policy.verbatim !== undefined) return { cacheControl: policy.verbatim, age: String(ageS) };
  const lifetimeS = Math.floor((meta.ttlMs ?? meta.expiresAt - meta.storedAt) / 1000);
  const remainingS = stale ? STALE_MAX_AGE_S : Math.max(0, lifetimeS - ageS);
  const shared = Math.min(remainingS, policy.sMaxAgeS ?? policy.maxAgeS ?? remainingS);
  const browser = Math.min(remainingS, policy.maxAgeS ?? remainingS, policy.requestMaxAgeS ?? remainingS);
  return { cacheControl: render(policy, ageS + browser, ageS + shared), age: String(ageS) };
}

/** The configured directives with computed values; max-age always present, s-maxage when it differs or was set. */
function render(policy: CachePolicy, maxAge: number, sMaxAge: number): string {
  const out: string[] = [];
  const named = new Set(policy.directives.map((d) => d.name));
  for (const { name, text } of policy.directives) {
    if (name === 'max-age') out.push(`max-age=${maxAge}`);
    else if (name === 's-maxage') out.push(`s-maxage=${sMaxAge}`);
    else if (name === 'stale-if-error' && policy.staleIfErrorS !== undefined) out.push(`stale-if-error=${policy.staleIfErrorS}`);
    else out.push(text);
  }
  if (!named.has('max-age')) out.push(`max-age=${maxAge}`);
  if (!named.has('s-maxage') && sMaxAge !== maxAge) out.push(`s-maxage=${sMaxAge}`);
  return out.join(', ');
}
