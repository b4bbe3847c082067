import { describe, expect, it } from 'vitest';
import { clientIdentity, parseAddress, trustedProxies } from './client.js';

const noProxies = trustedProxies([]);
const proxies = trustedProxies(['10.0.0.0/8', '2001:db8:ffff::/48']);
const headers = (h: Record<string, string>) => new Headers(h);

describe('client identity', () => {
  it('is the socket address when no proxy is trusted, whatever the forwarding headers say', () => {
    const spoofed = headers({ 'x-forwarded-for': '203.0.113.9', 'cf-connecting-ip': '203.0.113.10' });
    expect(clientIdentity('198.51.100.7', spoofed, noProxies)).toBe('198.51.100.7');
  });

  it('an untrusted peer behind nothing: its own headers are ignored even when other peers are trusted', () => {
    expect(clientIdentity('198.51.100.7', headers({ 'x-forwarded-for': '203.0.113.9' }), proxies)).toBe('198.51.100.7');
  });

  it('behind a trusted proxy: the first untrusted hop from the right, not the spoofable leftmost entry', () => {
    const h = headers({ 'x-forwarded-for': '1.2.3.4, 203.0.113.9, 10.1.1.1' });
    expect(clientIdentity('10.0.0.2', h, proxies)).toBe('203.0.113.9');
  });

  it('several X-Forwarded-For headers are one list (the last proxy appended to the last one)', () => {
    const h = new Headers();
    h.append('x-forwarded-for', '1.2.3.4');
    h.append('x-forwarded-for', '203.0.113.9');
    expect(clientIdentity('10.0.0.2', h, proxies)).toBe('203.0.113.9');
  });

  it('garbage in X-Forwarded-For ends the walk at the last hop we can vouch for (no fresh bucket)', () => {
    const h = headers({ 'x-forwarded-for': '203.0.113.9, not-an-ip, 10.1.1.1' });
    expect(clientIdentity('10.0.0.2', h, proxies)).toBe('10.1.1.1');
    expect(clientIdentity('10.0.0.2', headers({ 'x-forwarded-for': '1' }), proxies)).toBe('10.0.0.2');
  });

  it('every hop trusted: the leftmost, the closest known to the client', () => {
    expect(clientIdentity('10.0.0.2', headers({ 'x-forwarded-for': '10.9.9.9, 10.1.1.1' }), proxies)).toBe('10.9.9.9');
  });

  it('CF-Connecting-IP is used only when no X-Forwarded-For came', () => {
    expect(clientIdentity('10.0.0.2', headers({ 'cf-connecting-ip': '203.0.113.9' }), proxies)).toBe('203.0.113.9');
    const both = headers({ 'cf-connecting-ip': '192.0.2.1', 'x-forwarded-for': '203.0.113.9' });
    expect(clientIdentity('10.0.0.2', both, proxies)).toBe('203.0.113.9');
    expect(clientIdentity('10.0.0.2', headers({ 'cf-connecting-ip': 'junk' }), proxies)).toBe('10.0.0.2');
  });

  it('a v4-mapped socket address is the IPv4 client (and matches IPv4 proxy ranges)', () => {
    expect(clientIdentity('::ffff:198.51.100.7', headers({}), noProxies)).toBe('198.51.100.7');
    expect(clientIdentity('::ffff:10.0.0.2', headers({ 'x-forwarded-for': '203.0.113.9' }), proxies)).toBe('203.0.113.9');
  });

  it('IPv6 clients are bucketed by /64: every address a host picks in its /64 is the same client', () => {
    const a = clientIdentity('2001:db8:1:2:aaaa::1', headers({}), noProxies);
    const b = clientIdentity('2001:db8:1:2:ffff:ffff:ffff:ffff', headers({}), noProxies);
    const other = clientIdentity('2001:db8:1:3::1', headers({}), noProxies);
    expect(a).toBe('2001:db8:1:2::/64');
    expect(b).toBe(a);
    expect(other).not.toBe(a);
  });

  it('IPv6 proxies and forwarded hops with ports or brackets', () => {
    const h = headers({ 'x-forwarded-for': '[2001:db8:5:6::9]:4711, 2001:db8:ffff:1::1' });
    expect(clientIdentity('2001:db8:ffff::2', h, proxies)).toBe('2001:db8:5:6::/64');
    expect(clientIdentity('10.0.0.2', headers({ 'x-forwarded-for': '203.0.113.9:1234' }), proxies)).toBe('203.0.113.9');
  });

  it('no socket address: no identity', () => {
    expect(clientIdentity(undefined, headers({ 'x-forwarded-for': '203.0.113.9' }), proxies)).toBeUndefined();
  });

  it('parses only strict address forms', () => {
    expect(parseAddress('0x7f.1')).toBeUndefined();
    expect(parseAddress('fe80::1%eth0')?.toString()).toBe('fe80::1');
    expect(parseAddress(' 192.0.2.1 ')?.toString()).toBe('192.0.2.1');
  });
});
