import { describe, expect, it } from 'vitest';
import { STALE_MAX_AGE_S, ageOf, cachePolicy, responseFreshness, withRequestMaxAge } from './cache-control.js';

const DEFAULT = 'public, max-age=86400, s-maxage=2592000, stale-while-revalidate=86400, stale-if-error=604800';
const policy = cachePolicy(DEFAULT, 86_400);
const T0 = Date.parse('2026-12-01T00:00:00Z');
const DAY = 86_400;

/** An entry fetched at T0 whose upstream granted `ttlS` seconds. */
const entry = (ttlS: number, fetchedAt = T0) => ({ storedAt: fetchedAt, expiresAt: fetchedAt + ttlS * 1000, ttlMs: ttlS * 1000 });
const at = (seconds: number) => T0 + seconds * 1000;

/** The directive values of a Cache-Control string. */
function directives(cacheControl: string): Record<string, number | true> {
  return Object.fromEntries(cacheControl.split(',').map((part) => {
    const [name, value] = part.trim().split('=');
    return [name, value === undefined ? true : Number(value)];
  }));
}

/** Seconds a cache that honours Age (RFC 9111 §4.2) keeps the response: directive − Age. */
function kept(meta: ReturnType<typeof entry>, now: number, p = policy, stale = false) {
  const { cacheControl, age } = responseFreshness(meta, now, p, stale);
  const d = directives(cacheControl);
  return { shared: (d['s-maxage'] ?? d['max-age']) as number - Number(age), browser: d['max-age'] as number - Number(age), d, age: Number(age) };
}

describe('Cache-Control follows the entry, under the configured ceiling', () => {
  it('an upstream max-age=60 goes out as lifetimes of 60 s with a growing Age', () => {
    expect(responseFreshness(entry(60), at(0), policy, false)).toEqual({
      cacheControl: 'public, max-age=60, s-maxage=60, stale-while-revalidate=86400, stale-if-error=86400', age: '0' });
    const later = responseFreshness(entry(60), at(25.7), policy, false);
    expect(later).toEqual({ ...later, age: '25' });
    expect(directives(later.cacheControl)).toMatchObject({ 'max-age': 60, 's-maxage': 60 });
    expect(kept(entry(60), at(25.7))).toMatchObject({ shared: 35, browser: 35 });
  });

  it('never lets a cache keep more than the configured values from now (upstream max-age of a year)', () => {
    const fresh = kept(entry(365 * DAY), at(0));
    expect(fresh.d).toMatchObject({ 'max-age': DAY, 's-maxage': 30 * DAY });
    const aged = kept(entry(365 * DAY), at(40 * DAY));
    expect(aged).toMatchObject({ shared: 30 * DAY, browser: DAY, age: 40 * DAY });
  });

  it('an entry with no freshness left (upstream no-cache, MIN_TTL_S=0) may be kept for 0 s', () => {
    expect(responseFreshness(entry(0), at(0), policy, false).cacheControl)
      .toBe('public, max-age=0, s-maxage=0, stale-while-revalidate=86400, stale-if-error=86400');
  });

  it('a STALE response may be kept a short while, and still allows stale-while-revalidate', () => {
    const stale = kept(entry(60), at(500), policy, true);
    expect(stale).toMatchObject({ shared: STALE_MAX_AGE_S, browser: STALE_MAX_AGE_S, age: 500 });
    expect(stale.d['stale-while-revalidate']).toBe(DAY);
    // The configured ceiling still applies when it is shorter.
    expect(kept(entry(60), at(500), cachePolicy('public, max-age=10', DAY), true).browser).toBe(10);
  });

  it('bounds stale-if-error by IMGRELAY_STALE_IF_ERROR_S, and keeps a smaller configured one', () => {
    expect(directives(responseFreshness(entry(60), at(0), cachePolicy(DEFAULT, 3600), false).cacheControl)['stale-if-error']).toBe(3600);
    expect(directives(responseFreshness(entry(60), at(0), cachePolicy('public, stale-if-error=600', DAY), false).cacheControl)['stale-if-error']).toBe(600);
  });

  it('maxage= lowers the browser max-age only, and never raises it past the ceiling or the entry', () => {
    const long = entry(365 * DAY);
    expect(kept(long, at(5), withRequestMaxAge(policy, 3600))).toMatchObject({ browser: 3600, shared: 30 * DAY });
    expect(kept(long, at(5), withRequestMaxAge(policy, 31 * DAY))).toMatchObject({ browser: DAY, shared: 30 * DAY });
    expect(kept(entry(60), at(5), withRequestMaxAge(policy, 3600))).toMatchObject({ browser: 55, shared: 55 });
  });

  it('adds the directives a ceiling without them needs, so shared caches keep their own bound', () => {
    const noShared = withRequestMaxAge(cachePolicy('public, max-age=86400', DAY), 60);
    expect(responseFreshness(entry(365 * DAY), at(0), noShared, false).cacheControl).toBe('public, max-age=60, s-maxage=86400');
    expect(responseFreshness(entry(120), at(0), cachePolicy('public, immutable', DAY), false).cacheControl)
      .toBe('public, immutable, max-age=120');
  });

  it('passes a configured no-store through as it is', () => {
    expect(responseFreshness(entry(60), at(3), cachePolicy('no-store', DAY), false)).toEqual({ cacheControl: 'no-store', age: '3' });
  });

  it('counts Age from the last revalidation (expiresAt − ttlMs), from storedAt for entries without ttlMs', () => {
    const revalidated = { storedAt: T0, expiresAt: at(1000 + 60), ttlMs: 60_000 };
    expect(ageOf(revalidated, at(1010))).toBe(10);
    expect(ageOf({ storedAt: T0, expiresAt: at(60) }, at(10))).toBe(10);
    expect(ageOf(entry(60), at(-5))).toBe(0); // a clock step back never gives a negative Age
  });

  it('never lets any cache keep the bytes past the entry\'s expiry or the ceiling (random entries and times)', () => {
    let seed = 42;
    const random = (n: number) => (seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) % n;
    for (let i = 0; i < 5000; i++) {
      const meta = entry(random(2 * 365 * DAY), T0 - random(400 * DAY) * 1000);
      const now = T0 + random(1000) * 1000 + random(1000);
      const request = random(2) ? random(40 * DAY) : undefined;
      const { shared, browser } = kept(meta, now, withRequestMaxAge(policy, request));
      const remaining = Math.max(0, Math.ceil((meta.expiresAt - now) / 1000));
      expect(shared).toBeGreaterThanOrEqual(0);
      expect(shared).toBeLessThanOrEqual(Math.min(remaining, 30 * DAY));
      expect(browser).toBeLessThanOrEqual(Math.min(remaining, DAY, request ?? DAY));
    }
  });
});
