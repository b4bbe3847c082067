/** Parsers of single configuration values (CIDRs, DNS servers, resolve rules). Portable. */
import ipaddr from 'ipaddr.js';

/** A `host:port:address[:targetPort]` override, like curl --connect-to (IPv6 in brackets). */
export interface ResolveRule {
  host: string;
  port: number;
  address: string;
  targetPort?: number;
}

/** `a.b.c.d/n` or `v6/n`, prefix in range and not 0 (a /0 would switch the address check off). */
export function isCidr(value: string): boolean {
  const m = /^([^/]+)\/(\d{1,3})$/.exec(value);
  if (!m) return false;
  const bits = Number(m[2]);
  const v4 = /^\d{1,3}(\.\d{1,3}){3}$/.test(m[1]) && m[1].split('.').every((o) => Number(o) <= 255);
  const v6 = !v4 && m[1].includes(':') && /^[0-9a-f:.]+$/i.test(m[1]);
  return (v4 && bits >= 1 && bits <= 32) || (v6 && bits >= 1 && bits <= 128);
}

/** `ip`, `ip:port`, `[v6]` or `[v6]:port` → the spelling `Resolver#setServers` takes; undefined when invalid. */
export function parseDnsServer(value: string): string | undefined {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([0-9.]+)|([0-9a-fA-F:]+))(?::(\d{1,5}))?$/.exec(value.trim());
  if (!m) return undefined;
  const v6 = m[1] ?? m[3];
  const ip = v6 ?? m[2];
  if (m[3] !== undefined && m[4] !== undefined) return undefined; // bare IPv6 with a port is ambiguous
  const valid = v6 !== undefined ? ipaddr.IPv6.isValid(v6) : ipaddr.IPv4.isValidFourPartDecimal(ip);
  const portNumber = m[4] === undefined ? 53 : Number(m[4]);
  if (!valid || portNumber < 1 || portNumber > 65535) return undefined;
  if (m[4] === undefined) return ip;
  return v6 !== undefined ? `[${v6}]:${portNumber}` : `${ip}:${portNumber}`;
}

export function parseResolveRule(value: string): ResolveRule | undefined {
  const m = /^([^:\[\]]+):(\d{1,5}):(\[[0-9a-fA-F:.]+\]|[0-9.]+)(?::(\d{1,5}))?$/.exec(value.trim());
  if (!m) return undefined;
  const portNum = Number(m[2]);
  const target = m[4] === undefined ? undefined : Number(m[4]);
  if (portNum < 1 || portNum > 65535 || (target !== undefined && (target < 1 || target > 65535))) return undefined;
  return { host: m[1].toLowerCase(), port: portNum, address: m[3].replace(/^\[|\]$/g, ''), targetPort: target };
}

