import { describe, expect, it } from 'vitest';
import { expiryFor, pastStaleIfError, upstreamTtlS } from './freshness.js';

const now = Date.parse('2026-11-29T00:00:00Z');
const bounds = { minTtlS: 60, maxTtlS: 3600, defaultTtlS: 1800 };

describe('freshness', () => {
  it('prefers s-maxage over max-age (imgrelay is a shared cache)', () => {
    expect(upstreamTtlS({ cacheControl: 'public, max-age=10, s-maxage=300' }, now)).toBe(300);
  });
  it('reads Expires relative to the upstream Date', () => {
    const headers = { expires: 'Sun, 29 Nov 2026 01:00:00 GMT', date: 'Sun, 29 Nov 2026 00:30:00 GMT' };
    expect(upstreamTtlS(headers, now)).toBe(1800);
  });
  it('treats no-cache, no-store and private as immediately stale', () => {
    for (const cc of ['no-cache', 'no-store', 'private, max-age=600']) expect(upstreamTtlS({ cacheControl: cc }, now)).toBe(0);
  });
  it('clamps to the operator bounds', () => {
    expect(expiryFor({ cacheControl: 'max-age=5' }, now, bounds)).toBe(now + 60_000);
    expect(expiryFor({ cacheControl: 'max-age=999999' }, now, bounds)).toBe(now + 3_600_000);
  });
  it('uses the default TTL, clamped, when the upstream gives no hint (not the max: nothing was promised)', () => {
    expect(expiryFor({}, now, bounds)).toBe(now + 1_800_000);
    expect(expiryFor({}, now, { ...bounds, defaultTtlS: 86_400 })).toBe(now + 3_600_000);
    expect(expiryFor({}, now, { ...bounds, defaultTtlS: 0 })).toBe(now + 60_000);
  });
  it('counts the Age an upstream cache already used up against its lifetime', () => {
    expect(upstreamTtlS({ cacheControl: 'max-age=60', age: '45' }, now)).toBe(15);
    expect(upstreamTtlS({ cacheControl: 'max-age=60', age: '600' }, now)).toBe(0);
    expect(upstreamTtlS({ cacheControl: 'max-age=60', age: 'junk' }, now)).toBe(60);
  });
  it('stands in for a failing origin up to STALE_IF_ERROR_S past expiry, not beyond', () => {
    expect(pastStaleIfError({ expiresAt: now - 3_600_000 }, now, { staleIfErrorS: 3600 })).toBe(false);
    expect(pastStaleIfError({ expiresAt: now - 3_600_001 }, now, { staleIfErrorS: 3600 })).toBe(true);
    expect(pastStaleIfError({ expiresAt: now + 1 }, now, { staleIfErrorS: 0 })).toBe(false);
  });
  it('ignores malformed values instead of failing', () => {
    expect(upstreamTtlS({ cacheControl: 'max-age=abc' }, now)).toBeUndefined();
    expect(upstreamTtlS({ expires: 'not a date' }, now)).toBe(0);
  });
});
