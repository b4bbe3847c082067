/**
 * Who the client is, for per-client miss limits (miss-limit.ts) and the transform queue's round-robin (fair-queue.ts).
 *
 * The socket address, unless it belongs to a trusted proxy (IMGRELAY_TRUSTED_PROXIES): then the first address of
 * `X-Forwarded-For` that is NOT a trusted proxy, walking from the right. Each proxy appends the address it received
 * the request from, so the right end is written by proxies we trust and the left end by whoever sent the request: a
 * client can prepend any addresses it likes, but it cannot get past the hop our own proxy appended. (Taking the
 * leftmost entry, as many tutorials do, lets every request name a fresh client and escape its bucket.)
 * `CF-Connecting-IP` is used only when no `X-Forwarded-For` came: Cloudflare sends both, while a proxy that is not
 * Cloudflare passes a client's own `CF-Connecting-IP` through untouched.
 *
 * The identity is an IPv4 address or an IPv6 /64: one host (one home router, one VM) is routinely given a whole /64
 * and picks addresses inside it freely (privacy extensions, RFC 4941), so a per-address bucket would be one per
 * request for an attacker. Portable (no `node:` imports).
 */
import ipaddr from 'ipaddr.js';

type Address = ipaddr.IPv4 | ipaddr.IPv6;

/** Matches addresses against the trusted proxies' CIDRs (parsed once). */
export type TrustedProxies = (address: Address) => boolean;

export function trustedProxies(cidrs: readonly string[]): TrustedProxies {
  const ranges = cidrs.map((cidr) => ipaddr.parseCIDR(cidr));
  if (ranges.length === 0) return () => false;
  return (address) => ranges.some(([range, bits]) => range.kind() === address.kind() && address.match(range, bits));
}

/** The client's bucket key, or undefined when the connection has no address (it is gone, or not a socket). */
export function clientIdentity(peer: string | undefined, headers: Headers, trusted: TrustedProxies): string | undefined {
  const socket = parseAddress(peer);
  if (!socket) return undefined;
  if (!trusted(socket)) return bucketOf(socket);
  const forwardedFor = headers.get('x-forwarded-for');
  if (forwardedFor !== null) return bucketOf(firstUntrustedHop(forwardedFor, socket, trusted));
  return bucketOf(parseAddress(headers.get('cf-connecting-ip') ?? undefined) ?? socket);
}

/**
 * Walks `X-Forwarded-For` from the right past trusted proxies. An entry that is not an address ends the walk at the
 * hop to its right (the last one we can vouch for): garbage never buys a fresh bucket, at worst a shared one.
 */
function firstUntrustedHop(header: string, socket: Address, trusted: TrustedProxies): Address {
  const hops = header.split(',');
  let last = socket;
  for (let i = hops.length - 1; i >= 0; i--) {
    const hop = parseAddress(hops[i]);
    if (!hop) return last;
    if (!trusted(hop)) return hop;
    last = hop;
  }
  return last; // every hop is a trusted proxy: the leftmost is the closest we know to the client
}

/** An address as a socket or a forwarding header spells it (`::ffff:a.b.c.d`, `a.b.c.d:port`, `[v6]:port`). */
export function parseAddress(raw: string | undefined): Address | undefined {
  if (raw === undefined) return undefined;
  let text = raw.trim();
  const bracketed = /^\[([^\]]+)\](?::\d+)?$/.exec(text);
  if (bracketed) text = bracketed[1];
  else if (/^[\d.]+:\d+$/.test(text)) text = text.slice(0, text.lastIndexOf(':'));
  text = text.replace(/%.*$/, ''); // a zone index (fe80::1%eth0) names an interface, not another host
  // Strict forms only: ipaddr's lenient IPv4 parser would read `1` or `0x7f.1` as addresses.
  if (!ipaddr.IPv4.isValidFourPartDecimal(text) && !(text.includes(':') && ipaddr.IPv6.isValid(text))) return undefined;
  // `::ffff:a.b.c.d` (a dual-stack socket's IPv4 peer) is that IPv4 client, not an IPv6 one.
  return ipaddr.process(text);
}

function bucketOf(address: Address): string {
  if (address.kind() === 'ipv4') return address.toString();
  const parts = (address as ipaddr.IPv6).parts.slice(0, 4).map((part) => part.toString(16));
  return `${parts.join(':')}::/64`;
}
