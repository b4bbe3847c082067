import { describe, expect, it } from 'vitest';
import { ConfigError, parseConfig } from '../config.js';
import { clientIdentity, trustedProxies } from './client.js';
import { MissLimiter } from './miss-limit.js';

const problemsOf = (env: Record<string, string>) => {
  try {
    parseConfig(env);
    return [];
  } catch (error) {
    return (error as ConfigError).problems;
  }
};

describe('miss limit configuration', () => {
  it('is off by default, with no trusted proxies', () => {
    expect(parseConfig({}).missLimit).toEqual({ rate: undefined, burst: 0, trustedProxies: [] });
  });

  it('reads 60/m, 10/s and 1000/h; the burst defaults to the rate\'s count', () => {
    expect(parseConfig({ IMGRELAY_MISS_RATE: '60/m' }).missLimit).toMatchObject({ rate: { count: 60, periodS: 60 }, burst: 60 });
    expect(parseConfig({ IMGRELAY_MISS_RATE: ' 10/S ' }).missLimit.rate).toEqual({ count: 10, periodS: 1 });
    expect(parseConfig({ IMGRELAY_MISS_RATE: '1000/h', IMGRELAY_MISS_BURST: '50' }).missLimit)
      .toMatchObject({ rate: { count: 1000, periodS: 3600 }, burst: 50 });
  });

  it('refuses other rate spellings, a zero burst, and a burst without a rate, naming each variable', () => {
    for (const rate of ['60', '60/min', '0/m', '-1/s', '1.5/s', 'fast']) {
      expect(problemsOf({ IMGRELAY_MISS_RATE: rate })[0]).toMatch(/^IMGRELAY_MISS_RATE=.*60\/m/);
    }
    expect(problemsOf({ IMGRELAY_MISS_RATE: '60/m', IMGRELAY_MISS_BURST: '0' })[0]).toMatch(/^IMGRELAY_MISS_BURST=/);
    expect(problemsOf({ IMGRELAY_MISS_BURST: '10' })).toEqual([expect.stringMatching(/^IMGRELAY_MISS_BURST: needs IMGRELAY_MISS_RATE/)]);
  });

  it('refuses a burst the rate takes over 24 days to earn (the limiter\'s timer would overflow and limit nothing)', () => {
    expect(problemsOf({ IMGRELAY_MISS_RATE: '1/h', IMGRELAY_MISS_BURST: '600' }))
      .toEqual([expect.stringMatching(/^IMGRELAY_MISS_BURST=600 at IMGRELAY_MISS_RATE=1 per 3600 s takes 25 days .*at most 24 days/)]);
    expect(problemsOf({ IMGRELAY_MISS_RATE: '1/h', IMGRELAY_MISS_BURST: '576' })).toEqual([]); // exactly 24 days
    expect(() => new MissLimiter({ rate: { count: 1, periodS: 3600 }, burst: 600 })).toThrow(RangeError);
  });

  it('reads trusted proxies as CIDRs or single addresses, and refuses /0 (it would believe every client)', () => {
    expect(parseConfig({ IMGRELAY_TRUSTED_PROXIES: '10.0.0.0/8, 192.0.2.7, 2001:db8::/32, ::1' }).missLimit.trustedProxies)
      .toEqual(['10.0.0.0/8', '192.0.2.7/32', '2001:db8::/32', '::1/128']);
    // The IPv4-mapped spelling a dual-stack listener logs is the IPv4 range (peers are compared as IPv4).
    expect(parseConfig({ IMGRELAY_TRUSTED_PROXIES: '::ffff:10.0.0.1, ::ffff:10.1.0.0/112' }).missLimit.trustedProxies)
      .toEqual(['10.0.0.1/32', '10.1.0.0/16']);
    const trusted = trustedProxies(parseConfig({ IMGRELAY_TRUSTED_PROXIES: '::ffff:10.0.0.1' }).missLimit.trustedProxies);
    const viaProxy = new Headers({ 'x-forwarded-for': '203.0.113.9' });
    expect(clientIdentity('::ffff:10.0.0.1', viaProxy, trusted)).toBe('203.0.113.9');
    for (const bad of ['0.0.0.0/0', '::/0', 'proxy.internal', '10.0.0.0/33', '10']) {
      expect(problemsOf({ IMGRELAY_TRUSTED_PROXIES: bad })[0]).toMatch(/^IMGRELAY_TRUSTED_PROXIES=/);
    }
  });
});
