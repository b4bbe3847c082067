/**
 * The variables of per-client miss limits (issue #16 item 3): the rate and burst of each client's token bucket, and
 * the proxies whose forwarding headers name the client. src/config.ts spreads MISS_LIMIT_VARS into its table and
 * calls missLimitConfig once. Portable (no `node:` imports).
 */
import { z } from 'zod';
import ipaddr from 'ipaddr.js';
import { isCidr } from '../config-parse.js';
import { int, list, type VarSpec } from '../config-schema.js';

/** `count` misses per `periodS` seconds. */
export interface MissRate {
  count: number;
  periodS: number;
}

export interface MissLimitConfig {
  /** Undefined: limits off (the default). */
  rate?: MissRate;
  /** Misses a client may make at once before the rate applies; defaults to the rate's count. */
  burst: number;
  /** CIDRs whose `X-Forwarded-For` / `CF-Connecting-IP` are believed (src/policy/client.ts). */
  trustedProxies: readonly string[];
}

const PERIODS_S: Record<string, number> = { s: 1, m: 60, h: 3600 };
const RATE_FORM = 'a rate such as 60/m, 10/s or 1000/h (a count of at least 1 per second, minute or hour), or empty for off';

const missRate = z.string().trim().transform((value, ctx): MissRate | undefined => {
  if (value === '') return undefined;
  const m = /^(\d{1,9})\s*\/\s*([smh])$/i.exec(value);
  if (!m || Number(m[1]) < 1) {
    ctx.addIssue({ code: 'custom', message: RATE_FORM });
    return undefined;
  }
  return { count: Number(m[1]), periodS: PERIODS_S[m[2].toLowerCase()] };
});

/** A bare address is its own /32 or /128: a proxy is usually one host. /0 is refused (it would believe everyone). */
const trustedProxy = z.string().transform((value, ctx) => {
  const cidr = ipaddr.isValid(value) ? `${value}/${ipaddr.parse(value).kind() === 'ipv4' ? 32 : 128}` : value;
  if (!isCidr(cidr)) ctx.addIssue({ code: 'custom', message: 'addresses or CIDRs such as 10.0.0.0/8 or 2001:db8::/32 (not /0)' });
  return isCidr(cidr) ? unmapped(cidr) : cidr;
});

/**
 * `::ffff:10.0.0.1` (as a dual-stack listener logs an IPv4 peer) written as the IPv4 range it means: peers are
 * compared as IPv4 (client.ts), so the mapped spelling would silently trust no one.
 */
function unmapped(cidr: string): string {
  const [address, bits] = ipaddr.parseCIDR(cidr);
  if (address.kind() !== 'ipv6' || bits < 96 || !(address as ipaddr.IPv6).isIPv4MappedAddress()) return cidr;
  return `${(address as ipaddr.IPv6).toIPv4Address().toString()}/${bits - 96}`;
}

export const MISS_LIMIT_VARS = {
  MISS_RATE: [missRate, ''],
  MISS_BURST: [z.union([z.literal(''), int(1, 1_000_000_000)]), ''],
  TRUSTED_PROXIES: [list.pipe(z.array(trustedProxy)), ''],
} as const satisfies Record<string, VarSpec>;

type Parsed = { [K in keyof typeof MISS_LIMIT_VARS]: z.output<(typeof MISS_LIMIT_VARS)[K][0]> };

export function missLimitConfig(v: Parsed): MissLimitConfig {
  const burst = v.MISS_BURST === '' ? (v.MISS_RATE?.count ?? 0) : v.MISS_BURST;
  return { rate: v.MISS_RATE, burst, trustedProxies: v.TRUSTED_PROXIES };
}

/**
 * The longest bucket window (miss-limit.ts: `burst × period / count`): the limiter ends a window with a timer, and a
 * timer past 2^31 − 1 ms (24.8 days) fires after 1 ms instead, silently giving every client a fresh bucket at once.
 */
export const MAX_WINDOW_S = 24 * 86_400;

export const windowSeconds = (rate: MissRate, burst: number) => (burst * rate.periodS) / rate.count;

/** A burst without a rate limits nothing, and a window the limiter cannot time limits nothing either: said at start-up. */
export function missLimitProblems(v: Parsed): string[] {
  if (v.MISS_BURST !== '' && !v.MISS_RATE) return ['IMGRELAY_MISS_BURST: needs IMGRELAY_MISS_RATE (limits are off without a rate)'];
  const { rate, burst } = missLimitConfig(v);
  if (!rate || windowSeconds(rate, burst) <= MAX_WINDOW_S) return [];
  const days = Math.ceil(windowSeconds(rate, burst) / 86_400);
  return [`IMGRELAY_MISS_BURST=${burst} at IMGRELAY_MISS_RATE=${rate.count} per ${rate.periodS} s takes ${days} days to `
    + `earn back: at most ${MAX_WINDOW_S / 86_400} days (lower the burst or raise the rate)`];
}
