/**
 * The schema primitives of the configuration table (src/config.ts): integers with bounds, booleans, lists, CIDRs.
 * Concern modules that own variables of their own (their `*_VARS` tables) build on the same primitives, so every
 * variable reads and fails the same way. Portable (no `node:` imports).
 */
import { z } from 'zod';
import { wholeFamilyCovered } from './fetch/cidr-coverage.js';
import { type ResolveRule, isCidr, parseDnsServer, parseResolveRule } from './config-parse.js';

/** One variable: its schema and its default (a string, parsed like user input). */
export type VarSpec = readonly [z.ZodType<unknown, string>, string];

export const int = (min: number, max = Number.MAX_SAFE_INTEGER) => {
  const expected = max === Number.MAX_SAFE_INTEGER ? `an integer of at least ${min}` : `an integer between ${min} and ${max}`;
  return z.string().trim().regex(/^\d+$/, expected)
    .transform(Number).pipe(z.number().int().min(min, expected).max(max, expected));
};
export const bool = z.string().trim().toLowerCase()
  .pipe(z.enum(['true', 'false', '1', '0', 'yes', 'no'])).transform((v) => ['true', '1', 'yes'].includes(v));
export const list = z.string().transform((v) => v.split(',').map((s) => s.trim()).filter(Boolean));
export const port = int(1, 65535);
/** A listening port: 0 asks the OS for a free one (tests, side-by-side benchmarks). */
export const listenPort = int(0, 65535);
/** A host name or glob as host-glob.ts matches it: no scheme, no port, no path. */
export const HOST_GLOB = /^[a-z0-9*.-]+$/i;
export const hostGlobList = list.pipe(z.array(z.string().regex(HOST_GLOB, 'host names or globs (no scheme, no port)')));
export const cidrList = list.pipe(z.array(z.string().refine(isCidr, 'a CIDR such as 127.0.0.0/8 or ::1/128 (not /0)')))
  .superRefine((cidrs, ctx) => {
    const family = wholeFamilyCovered(cidrs);
    if (family) ctx.addIssue({ code: 'custom', message: `CIDRs that leave part of ${family} checked; these cover all of ${family} in effect (the address check would be off)` });
  });
/** Each server in the spelling `Resolver#setServers` takes. */
export const dnsServerList = list.pipe(z.array(z.string().transform((v, ctx) => {
  const server = parseDnsServer(v);
  if (!server) ctx.addIssue({ code: 'custom', message: 'ip or ip:port, IPv6 in brackets when a port is given ([::1]:53)' });
  return server as string;
})));
export const resolveList = list.pipe(z.array(z.string().transform((v, ctx) => {
  const rule = parseResolveRule(v);
  if (!rule) ctx.addIssue({ code: 'custom', message: 'host:port:address[:targetPort], IPv6 in brackets' });
  return rule as ResolveRule;
})));

