import { describe, expect, it } from 'vitest';
import { wholeFamilyCovered } from './cidr-coverage.js';

describe('wholeFamilyCovered (IMGRELAY_ALLOW_PRIVATE_NETWORKS that would switch the address check off)', () => {
  it.each([
    ['every IPv4 as its v4-mapped range', ['::ffff:0:0/96'], 'IPv4'],
    ['every IPv4 as its v4-mapped range, in dotted spelling', ['::ffff:0.0.0.0/96'], 'IPv4'],
    ['every IPv4 in two halves', ['0.0.0.0/1', '128.0.0.0/1'], 'IPv4'],
    ['every IPv4, half plain and half v4-mapped', ['0.0.0.0/1', '::ffff:128.0.0.0/97'], 'IPv4'],
    ['every IPv4 in overlapping, unsorted pieces', ['192.0.0.0/2', '0.0.0.0/2', '64.0.0.0/2', '128.0.0.0/3', '160.0.0.0/3', '10.0.0.0/8'], 'IPv4'],
    ['every IPv4 inside a wider IPv6 range', ['::/64'], 'IPv4'],
    ['every IPv4 inside half of IPv6', ['::/1'], 'IPv4'],
    ['every IPv6 in two halves', ['::/1', '8000::/1'], 'IPv6'],
    ['every IPv6 with an uncompressed spelling', ['0:0:0:0:0:0:0:0/1', '8000:0:0:0:0:0:0:0/1'], 'IPv6'],
  ])('refuses %s', (_why, cidrs, family) => {
    expect(wholeFamilyCovered(cidrs)).toBe(family);
  });

  it.each([
    ['loopback only', ['127.0.0.0/8', '::1/128']],
    ['a test lab', ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', 'fd00::/8']],
    ['IPv4 but for one address', ['0.0.0.0/1', '128.0.0.0/2', '192.0.0.0/3', '224.0.0.0/4', '240.0.0.0/5',
      '248.0.0.0/6', '252.0.0.0/7', '254.0.0.0/8', '255.0.0.0/9', '255.128.0.0/10', '255.192.0.0/11', '255.224.0.0/12',
      '255.240.0.0/13', '255.248.0.0/14', '255.252.0.0/15', '255.254.0.0/16', '255.255.0.0/17', '255.255.128.0/18',
      '255.255.192.0/19', '255.255.224.0/20', '255.255.240.0/21', '255.255.248.0/22', '255.255.252.0/23',
      '255.255.254.0/24', '255.255.255.0/25', '255.255.255.128/26', '255.255.255.192/27', '255.255.255.224/28',
      '255.255.255.240/29', '255.255.255.248/30', '255.255.255.252/31', '255.255.255.254/32']],
    ['the upper half of IPv6 only', ['8000::/1']],
  ])('accepts %s', (_why, cidrs) => {
    expect(wholeFamilyCovered(cidrs)).toBeUndefined();
  });
});
