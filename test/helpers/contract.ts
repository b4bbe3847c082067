/**
 * The success headers DESIGN.md promises on every image, asserted the same way for the Node service and the
 * Workers build. Portable: runs in Node and inside workerd.
 */
import { expect } from 'vitest';

/** Headers of an image relayed from `host` with the default caching and no negotiation. */
export function expectContractHeaders(h: Headers, host: string): void {
  expect(h.get('etag')).toMatch(/^"[0-9a-f]{32}"$/);
  expect(Date.parse(h.get('last-modified') ?? '')).not.toBeNaN();
  expectUnderCeiling(h);
  expect(h.get('vary')).toBeNull();
  expect(h.get('access-control-allow-origin')).toBe('*');
  expect(h.get('cross-origin-resource-policy')).toBe('cross-origin');
  expect(h.get('timing-allow-origin')).toBe('*');
  expect(h.get('x-content-type-options')).toBe('nosniff');
  expect(h.get('content-security-policy')).toBe("default-src 'none'; style-src 'unsafe-inline'; sandbox");
  expect(h.get('referrer-policy')).toBe('no-referrer');
  expect(h.get('server-timing')).toMatch(/^cache;desc=(MISS|HIT-MEMORY|HIT-STORE)/);
  const escaped = host.replace(/\./g, '\\.');
  expect(h.get('surrogate-key')).toMatch(new RegExp(`^src-[0-9a-f]{24} host-${escaped}$`));
  expect(h.get('cache-tag')).toMatch(new RegExp(`^src-[0-9a-f]{24},host-${escaped}$`));
}

/**
 * DESIGN.md "Cache": the configured Cache-Control (the default here:
 * `public, max-age=86400, s-maxage=2592000, stale-while-revalidate=86400, stale-if-error=604800`) is a ceiling on what a cache keeps from now,
 * `directive − Age`; stale-if-error is bounded by STALE_IF_ERROR_S (default a day); the other directives stay.
 */
export function expectUnderCeiling(h: Headers): void {
  const age = Number(h.get('age'));
  expect(h.get('age')).toMatch(/^\d+$/);
  const cc = h.get('cache-control') ?? '';
  expect(cc).toMatch(/^public, max-age=\d+, s-maxage=\d+, stale-while-revalidate=86400, stale-if-error=86400$/);
  const [maxAge, sMaxAge] = [/max-age=(\d+)/, /s-maxage=(\d+)/].map((re) => Number(re.exec(cc)?.[1]) - age);
  expect(maxAge).toBeGreaterThan(0);
  expect(maxAge).toBeLessThanOrEqual(86_400);
  expect(sMaxAge).toBeGreaterThanOrEqual(maxAge);
  expect(sMaxAge).toBeLessThanOrEqual(2_592_000);
}
