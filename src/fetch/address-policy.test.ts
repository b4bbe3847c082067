import ipaddr from 'ipaddr.js';
import { describe, expect, it } from 'vitest';
import { createAddressPolicy, REFUSED_RANGE_NAMES } from './address-policy.js';

const strict = createAddressPolicy([]);

describe('refused classes (no allow list)', () => {
  it.each([
    ['IPv4 loopback', '127.0.0.1'], ['IPv4 loopback, far end', '127.255.255.254'],
    ['"this network" 0.0.0.0/8', '0.0.0.0'], ['"this network" 0.0.0.0/8', '0.1.2.3'],
    ['RFC 1918 10/8', '10.1.2.3'], ['RFC 1918 172.16/12', '172.31.255.255'], ['RFC 1918 192.168/16', '192.168.0.1'],
    ['carrier-grade NAT', '100.64.0.1'], ['carrier-grade NAT, far end', '100.127.255.255'],
    ['link-local', '169.254.1.1'], ['cloud metadata', '169.254.169.254'],
    ['multicast', '224.0.0.1'], ['multicast, far end', '239.255.255.255'], ['broadcast', '255.255.255.255'],
    ['reserved 240/4', '240.0.0.1'], ['benchmarking 198.18/15', '198.19.0.1'], ['IETF assignments', '192.0.0.8'],
    ['documentation TEST-NET-1', '192.0.2.1'], ['documentation TEST-NET-3', '203.0.113.9'],
    ['IPv6 loopback', '::1'], ['IPv6 unspecified', '::'], ['IPv6 ULA fc00::/7', 'fd12:3456::1'],
    ['IPv6 ULA fc00::/7 (fc)', 'fc00::1'], ['IPv6 link-local', 'fe80::1'], ['IPv6 multicast', 'ff02::1'],
    ['IPv6 documentation', '2001:db8::1'], ['IPv6 site-local (deprecated)', 'fec0::1'],
    ['v4-mapped loopback', '::ffff:127.0.0.1'], ['v4-mapped metadata', '::ffff:169.254.169.254'],
    ['v4-mapped RFC 1918 (hex)', '::ffff:a00:1'], ['NAT64 of loopback', '64:ff9b::7f00:1'],
    ['NAT64 of RFC 1918', '64:ff9b::10.0.0.1'], ['local-use NAT64', '64:ff9b:1::808:808'],
    ['6to4 (even of a public IPv4)', '2002:808:808::1'], ['Teredo', '2001:0:4136:e378:8000:63bf:3fff:fdd2'],
    ['v4-compatible (deprecated)', '::8.8.8.8'], ['IPv4-translated', '::ffff:0:8.8.8.8'],
    ['IPv6 outside 2000::/3', '4000::1'], ['IPv6 discard prefix', '100::1'],
    ['IPv6 benchmarking', '2001:2::1'], ['IPv6 with a zone', 'fe80::1%eth0'],
  ])('refuses %s (%s)', (_name, ip) => {
    expect(strict.isAllowed(ip)).toBe(false);
    expect(strict.refusalReason(ip)).toEqual(expect.any(String));
  });

  it.each(['', 'example.com', '0x7f.0.0.1', '2130706433', '127.1', '1.2.3.4.5', '999.1.1.1', ':::'])(
    'refuses %j, which is not a plain IP address', (input) => {
      expect(strict.isAllowed(input)).toBe(false);
    });
});

describe('allowed global unicast', () => {
  it.each([
    ['a public IPv4', '93.184.215.14'], ['just outside 100.64/10', '100.128.0.1'], ['just outside 172.16/12', '172.32.0.1'],
    ['just below 127/8', '126.255.255.255'], ['a public IPv6', '2606:4700:4700::1111'],
    ['v4-mapped public IPv4', '::ffff:93.184.215.14'], ['NAT64 of a public IPv4', '64:ff9b::93.184.215.14'],
    ['a bracketed IPv6 literal', '[2a00:1450:4001:80e::200e]'],
  ])('allows %s (%s)', (_name, ip) => {
    expect(strict.refusalReason(ip)).toBeUndefined();
    expect(strict.isAllowed(ip)).toBe(true);
  });
});

describe('IMGRELAY_ALLOW_PRIVATE_NETWORKS', () => {
  const lab = createAddressPolicy(['127.0.0.1/32', '10.8.0.0/16', 'fd00:1::/32']);

  it('allows addresses inside an allowed CIDR, IPv4 and IPv6', () => {
    expect(['127.0.0.1', '10.8.200.1', 'fd00:1::5'].map(lab.isAllowed)).toEqual([true, true, true]);
  });
  it('allows the v4-mapped forms of an allowed IPv4 CIDR', () => {
    expect(['::ffff:127.0.0.1', '::ffff:7f00:1', '::ffff:10.8.0.9'].map(lab.isAllowed)).toEqual([true, true, true]);
  });
  it('still refuses the neighbours of an allowed CIDR', () => {
    expect(['127.0.0.2', '::ffff:127.0.0.2', '10.9.0.1', 'fd00:2::1', '::1'].map(lab.isAllowed))
      .toEqual([false, false, false, false, false]);
  });
  it('does not extend the exemption to NAT64 or 6to4 embeddings of an allowed IPv4', () => {
    expect(['64:ff9b::7f00:1', '2002:7f00:1::1'].map(lab.isAllowed)).toEqual([false, false]);
  });
  it('reads ::127.0.0.1 as the OS does (v4-compatible, not v4-mapped) and refuses it', () => {
    expect(lab.isAllowed('::127.0.0.1')).toBe(false);
    expect(createAddressPolicy(['::127.0.0.0/104']).isAllowed('127.0.0.1')).toBe(false);
  });
  it('matches an IPv4 address against an allowed v4-mapped IPv6 CIDR', () => {
    expect(createAddressPolicy(['::ffff:127.0.0.0/104']).isAllowed('127.0.0.5')).toBe(true);
  });
  it('refuses to be built with /0 or a malformed CIDR (start-up error)', () => {
    expect(() => createAddressPolicy(['0.0.0.0/0'])).toThrow(/\/0/);
    expect(() => createAddressPolicy(['::/0'])).toThrow(/\/0/);
    expect(() => createAddressPolicy(['10.0.0.0/33'])).toThrow(/not a CIDR/);
  });
});

describe('the table', () => {
  it('gives a reason for every special range ipaddr.js knows, so none is allowed by accident', () => {
    const specialRanges = (proto: object) => Object.keys((proto as { SpecialRanges: object }).SpecialRanges);
    const v4Names = specialRanges(ipaddr.IPv4.prototype);
    const v6Names = specialRanges(ipaddr.IPv6.prototype);
    const judgedByEmbedding = ['ipv4Mapped', 'rfc6052'];
    const unlisted = [...v4Names, ...v6Names].filter((n) => !(n in REFUSED_RANGE_NAMES) && !judgedByEmbedding.includes(n));
    expect(unlisted).toEqual([]);
  });
});
