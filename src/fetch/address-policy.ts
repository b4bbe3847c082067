/**
 * Which IP addresses an open image fetcher may connect to: global unicast only. The policy is data (the two
 * tables below, go-camo style), each entry saying why it is refused; the code only walks the tables.
 * Portable (no `node:` imports): the Workers build checks IP-literal hosts with it too.
 *
 * Embedded IPv4 in IPv6, decided per form:
 * - v4-mapped `::ffff:a.b.c.d` — extract and judge the IPv4: a dual-stack socket connecting there reaches
 *   exactly a.b.c.d, so the IPv4 verdict (allow list included) is the honest answer.
 * - NAT64 well-known prefix `64:ff9b::/96` — extract and judge the IPv4 (allow list NOT applied): on an
 *   IPv6-only host behind DNS64 every IPv4-only CDN resolves there, so refusing outright would break them,
 *   while `64:ff9b::7f00:1` is still refused because 127.0.0.1 is.
 * - Refused outright: local-use NAT64 `64:ff9b:1::/48` (operator-chosen layout, by definition towards a
 *   private network), 6to4 `2002::/16` and Teredo `2001::/32` (deprecated tunnels whose real destination
 *   depends on relays; Teredo even obfuscates its IPv4), v4-compatible `::/96` (deprecated since RFC 4291)
 *   and v4-translated `::ffff:0:0:0/96`. No image CDN publishes such addresses; refusing costs nothing.
 *
 * Default deny: a range name that ipaddr.js reports and this table does not list is refused as well, so a
 * new special range in an ipaddr.js upgrade can only make the policy stricter.
 */
import ipaddr from 'ipaddr.js';

type Address = ipaddr.IPv4 | ipaddr.IPv6;

/** ipaddr.js `range()` names that are refused, and why. */
export const REFUSED_RANGE_NAMES: Readonly<Record<string, string>> = {
  // --- IPv4 ---
  unspecified: '0.0.0.0/8 and ::: "this host"; connecting to 0.0.0.0 reaches local services',
  broadcast: '255.255.255.255: limited broadcast, never a server',
  multicast: '224.0.0.0/4 and ff00::/8: multicast groups, not an HTTP server',
  linkLocal: '169.254.0.0/16 and fe80::/10: link-local, home of cloud metadata (169.254.169.254)',
  loopback: '127.0.0.0/8 and ::1: this machine (admin port, sidecars, databases)',
  carrierGradeNat: '100.64.0.0/10: shared address space of carrier NAT, internal to a provider',
  private: '10/8, 172.16/12, 192.168/16 (RFC 1918): internal networks',
  reserved: 'IETF protocol assignments, documentation nets, benchmarking 198.18/15, 240/4, 2001:db8::/32',
  as112: 'AS112 sinks for reverse DNS of private space: never an image server',
  amt: 'AMT multicast relays (RFC 7450): not an HTTP origin',
  // --- IPv6 ---
  uniqueLocal: 'fc00::/7: unique local addresses, the IPv6 private networks',
  deprecatedSiteLocal: 'fec0::/10: deprecated site-local, still routed internally by some networks',
  discard: '100::/64: discard-only prefix (RFC 6666)',
  rfc6145: '::ffff:0:0:0/96: IPv4-translated addresses (SIIT), an embedded IPv4 behind a translator',
  '6to4': '2002::/16: 6to4 tunnel towards an embedded IPv4, relay-dependent and deprecated (RFC 7526)',
  teredo: '2001::/32: Teredo tunnel with an obfuscated embedded IPv4',
  benchmarking: '2001:2::/48: benchmarking only (RFC 5180)',
  as112v6: 'AS112 sinks (IPv6)',
  deprecatedOrchid: '2001:10::/28: ORCHID identifiers, not routable',
  orchid2: '2001:20::/28: ORCHIDv2 identifiers, not routable',
  droneRemoteIdProtocolEntityTags: '2001:30::/28: drone remote ID tags, not routable',
  segmentRouting: '5f00::/16: SRv6 segment identifiers, not hosts',
};

/** Explicit CIDRs refused on top of the range names (ranges ipaddr.js calls plain unicast, or belt and braces). */
export const REFUSED_CIDRS: ReadonlyArray<readonly [cidr: string, why: string]> = [
  ['::/96', 'IPv4-compatible addresses: deprecated (RFC 4291), an embedded IPv4 we will not route to'],
  ['64:ff9b:1::/48', 'local-use NAT64 prefix (RFC 8215): translation towards an operator\'s own network'],
  ['192.0.0.0/24', 'IETF protocol assignments (also in "reserved"; listed so the table is explicit)'],
  ['198.18.0.0/15', 'benchmarking networks (RFC 2544; also in "reserved")'],
];

/** IPv6 global unicast is 2000::/3; everything outside it is reserved, special or not routable. */
const IPV6_GLOBAL_UNICAST = ipaddr.IPv6.parseCIDR('2000::/3');
/** The NAT64 well-known prefix whose embedded IPv4 is judged rather than refused outright. */
const NAT64_WELL_KNOWN = ipaddr.IPv6.parseCIDR('64:ff9b::/96');
const PARSED_REFUSED_CIDRS = REFUSED_CIDRS.map(([cidr, why]) => ({ range: ipaddr.parseCIDR(cidr), why }));

export interface AddressPolicy {
  isAllowed(ip: string): boolean;
  /** Why `ip` is refused (for logs only, never for clients); undefined when it is allowed. */
  refusalReason(ip: string): string | undefined;
}

/**
 * Builds the policy. `allowPrivateCidrs` (IMGRELAY_ALLOW_PRIVATE_NETWORKS, never /0) exempts matching
 * addresses, including their v4-mapped IPv6 forms. Throws at start-up on a CIDR it cannot use.
 */
export function createAddressPolicy(allowPrivateCidrs: readonly string[]): AddressPolicy {
  const allowed = allowPrivateCidrs.map(parseAllowedCidr);
  const refusalReason = (ip: string): string | undefined => {
    const address = parseStrict(ip);
    if (!address) return 'not an IP address';
    if (matchesAny(address, allowed)) return undefined;
    return judge(address);
  };
  return { refusalReason, isAllowed: (ip) => refusalReason(ip) === undefined };
}

function parseAllowedCidr(cidr: string): [Address, number] {
  const [address = '', bits = ''] = cidr.split('/');
  const canonical = `${address.includes(':') ? canonicalIPv6(address) : address}/${bits}`;
  if (!ipaddr.isValidCIDR(canonical)) throw new Error(`Allowed network ${JSON.stringify(cidr)} is not a CIDR`);
  const range = ipaddr.parseCIDR(canonical);
  if (range[1] === 0) throw new Error(`Allowed network ${JSON.stringify(cidr)}: /0 would disable the check`);
  return range;
}

/** Dotted-quad IPv4 or IPv6 (brackets tolerated, zone refused); inet_aton oddities are not addresses here. */
function parseStrict(ip: string): Address | undefined {
  const bare = ip.startsWith('[') && ip.endsWith(']') ? ip.slice(1, -1) : ip;
  if (ipaddr.IPv4.isValidFourPartDecimal(bare)) return ipaddr.IPv4.parse(bare);
  const canonical = bare.includes(':') ? canonicalIPv6(bare) : undefined;
  return canonical !== undefined && ipaddr.IPv6.isValid(canonical) ? ipaddr.IPv6.parse(canonical) : undefined;
}

/**
 * The IPv6 as the socket will read it (inet_pton semantics, via the WHATWG URL parser), in pure hex.
 * ipaddr.js alone reads `::8.8.8.8` as v4-mapped `::ffff:8.8.8.8` while the OS connects to v4-compatible
 * `::808:808`: judging one address and connecting to another is exactly the bug this module prevents.
 */
export function canonicalIPv6(bare: string): string | undefined {
  try {
    return new URL(`http://[${bare}]/`).hostname.slice(1, -1);
  } catch {
    return undefined; // not an IPv6 address, or one with a zone (`%eth0`), which we refuse
  }
}

/** Matches the address, its v4-mapped form and (when it is v4-mapped) its IPv4 against the CIDRs. */
function matchesAny(address: Address, ranges: ReadonlyArray<[Address, number]>): boolean {
  const forms: Address[] = [address];
  if (address.kind() === 'ipv4') forms.push((address as ipaddr.IPv4).toIPv4MappedAddress());
  else if ((address as ipaddr.IPv6).isIPv4MappedAddress()) forms.push((address as ipaddr.IPv6).toIPv4Address());
  return ranges.some((range) => forms.some((form) => form.kind() === range[0].kind() && form.match(range)));
}

/** The refused-table walk, without the allow list. */
function judge(address: Address): string | undefined {
  if (address.kind() === 'ipv6') {
    const v6 = address as ipaddr.IPv6;
    if (v6.isIPv4MappedAddress()) return prefixed('v4-mapped', judge(v6.toIPv4Address()));
    if (v6.match(NAT64_WELL_KNOWN)) return prefixed('NAT64', judge(embeddedIPv4(v6)));
  }
  const name = address.range();
  if (name !== 'unicast') return REFUSED_RANGE_NAMES[name] ?? `special range "${name}" (unlisted: default deny)`;
  const cidr = PARSED_REFUSED_CIDRS.find(({ range }) => range[0].kind() === address.kind() && address.match(range));
  if (cidr) return cidr.why;
  if (address.kind() === 'ipv6' && !address.match(IPV6_GLOBAL_UNICAST)) return 'outside IPv6 global unicast 2000::/3';
  return undefined;
}

function embeddedIPv4(v6: ipaddr.IPv6): ipaddr.IPv4 {
  const [hi, lo] = v6.parts.slice(6);
  return new ipaddr.IPv4([hi >> 8, hi & 0xff, lo >> 8, lo & 0xff]);
}

function prefixed(form: string, reason: string | undefined): string | undefined {
  return reason === undefined ? undefined : `${form} ${reason}`;
}
