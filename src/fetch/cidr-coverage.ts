/**
 * Does a list of allowed CIDRs (IMGRELAY_ALLOW_PRIVATE_NETWORKS) switch the address check off for a whole family?
 * `/0` is refused by the syntax check, but the same effect has many spellings: `::ffff:0:0/96` (every IPv4, since
 * the allow list also matches v4-mapped forms), `0.0.0.0/1,128.0.0.0/1`, `::/1,8000::/1`, `::ffff:0:0/97` plus
 * `::ffff:128.0.0.0/97`… So coverage is computed on numbers, not strings: each CIDR becomes an interval of its
 * family (IPv4 CIDRs also count inside ::ffff:0:0/96, v4-mapped IPv6 CIDRs also count in IPv4, exactly as
 * address-policy.ts matches them), the intervals are merged, and the family is covered when nothing is left out.
 * Portable (ipaddr.js only): config.ts calls it while parsing.
 */
import ipaddr from 'ipaddr.js';
import { canonicalIPv6 } from './address-policy.js';

type Family = 'IPv4' | 'IPv6';
type Interval = [start: bigint, end: bigint];

const V4_BITS = 32n;
const V6_BITS = 128n;
/** ::ffff:0:0/96, where a v4-mapped address lives. */
const MAPPED_BASE = 0xffffn << 32n;

/** The family whose every address the CIDRs allow, or undefined. Unparseable entries are ignored (isCidr reports them). */
export function wholeFamilyCovered(cidrs: readonly string[]): Family | undefined {
  const v4: Interval[] = [];
  const v6: Interval[] = [];
  for (const cidr of cidrs) {
    const parsed = parse(cidr);
    if (!parsed) continue;
    const [address, bits] = parsed;
    if (address.kind() === 'ipv4') {
      const interval = toInterval(toBigInt(address.toByteArray()), BigInt(bits), V4_BITS);
      v4.push(interval);
      v6.push([interval[0] + MAPPED_BASE, interval[1] + MAPPED_BASE]);
    } else {
      const interval = toInterval(toBigInt(address.toByteArray()), BigInt(bits), V6_BITS);
      v6.push(interval);
      const mapped = intersect(interval, [MAPPED_BASE, MAPPED_BASE + (1n << V4_BITS) - 1n]);
      if (mapped) v4.push([mapped[0] - MAPPED_BASE, mapped[1] - MAPPED_BASE]);
    }
  }
  // IPv6 first: covering it covers IPv4 too (through ::ffff:0:0/96), and the wider verdict is the clearer one.
  if (covers(v6, (1n << V6_BITS) - 1n)) return 'IPv6';
  if (covers(v4, (1n << V4_BITS) - 1n)) return 'IPv4';
  return undefined;
}

function parse(cidr: string): [ipaddr.IPv4 | ipaddr.IPv6, number] | undefined {
  const [address = '', bits = ''] = cidr.split('/');
  // The socket's reading of an IPv6 spelling, as address-policy.ts judges it.
  const spelled = address.includes(':') ? `${canonicalIPv6(address) ?? address}/${bits}` : cidr;
  return ipaddr.isValidCIDR(spelled) ? ipaddr.parseCIDR(spelled) : undefined;
}

function toBigInt(bytes: number[]): bigint {
  return bytes.reduce((value, byte) => (value << 8n) | BigInt(byte), 0n);
}

function toInterval(address: bigint, bits: bigint, width: bigint): Interval {
  const size = 1n << (width - bits);
  const start = address & ~(size - 1n);
  return [start, start + size - 1n];
}

function intersect(a: Interval, b: Interval): Interval | undefined {
  const start = a[0] > b[0] ? a[0] : b[0];
  const end = a[1] < b[1] ? a[1] : b[1];
  return start <= end ? [start, end] : undefined;
}

/** True when the union of `intervals` is exactly [0, max]. */
function covers(intervals: Interval[], max: bigint): boolean {
  let next = 0n; // the first address not yet covered
  for (const [start, end] of [...intervals].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))) {
    if (start > next) return false;
    if (end + 1n > next) next = end + 1n;
    if (next > max) return true;
  }
  return next > max;
}
