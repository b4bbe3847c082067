/**
 * Parse-time checks of a source URL, applied to the first hop and to every redirect hop. Portable.
 *
 * Every refusal is the same RelayError (E_SOURCE_FORBIDDEN, SOURCE_FORBIDDEN_DETAIL) whether it is caught
 * here or when connecting, so a prober cannot tell "that name is blocked" from "that name resolves to a
 * private address"; the precise reason goes to the logger only.
 */
import type { Config } from '../config.js';
import { RelayError } from '../errors.js';
import type { Logger } from '../logger.js';
import { silentLogger } from '../logger.js';
import { createAddressPolicy, type AddressPolicy } from './address-policy.js';
import { compileHostGlobs, normalizeHostname } from './host-glob.js';
import { compileLoopCheck, loopError } from './loop-guard.js';

/** The one client-visible detail of every 403, at parse time and at connect time alike. */
export const SOURCE_FORBIDDEN_DETAIL = 'Source is not allowed';

export type SourcePolicyConfig = Pick<Config,
  'allowedHosts' | 'blockedHosts' | 'allowedPorts' | 'maxUrlBytes' | 'allowPrivateNetworks'>
  & Partial<Pick<Config, 'publicHosts'>>;

export interface SourcePolicy {
  /**
   * Throws RelayError E_URL_TOO_LONG (414), E_LOOP (508: the URL leads back to this service, loop-guard.ts) or
   * E_SOURCE_FORBIDDEN (403); returns when the URL may be fetched.
   */
  check(url: URL): void;
}

/**
 * Names that always point inside the network (or at this machine), whatever DNS says. Refused even when
 * IMGRELAY_ALLOW_PRIVATE_NETWORKS is set: that variable relaxes addresses, never names.
 */
export const REFUSED_NAME_GLOBS: readonly string[] = [
  'localhost', // this machine; resolvers answer it without asking DNS
  '*.localhost', // RFC 6761: every name under localhost is loopback
  'localhost.localdomain', '*.localdomain', // distribution defaults for this machine / the LAN
  '*.local', // mDNS (RFC 6762): devices on the local link
  '*.internal', // cloud-private zones, e.g. metadata.google.internal
  '*.home.arpa', // RFC 8375: home networks
  '*.lan', '*.intranet', '*.corp', '*.private', // common private zones (RFC 6762 appendix G)
];

const DEFAULT_PORTS: Readonly<Record<string, number>> = { 'http:': 80, 'https:': 443 };

/** Builds the checks from the config; `logger` receives the precise reason of each refusal (debug level). */
export function createSourcePolicy(config: SourcePolicyConfig, logger: Logger = silentLogger,
  addressPolicy: AddressPolicy = createAddressPolicy(config.allowPrivateNetworks)): SourcePolicy {
  const isRefusedName = compileHostGlobs(REFUSED_NAME_GLOBS);
  const isAllowedHost = compileHostGlobs(config.allowedHosts);
  const isBlockedHost = compileHostGlobs(config.blockedHosts);
  const allowedPorts = new Set(config.allowedPorts);
  const loopReason = compileLoopCheck(config.publicHosts ?? []);

  const reasonToRefuse = (url: URL): string | undefined => {
    if (!(url.protocol in DEFAULT_PORTS)) return `scheme ${url.protocol} is not http or https`;
    if (url.username !== '' || url.password !== '') return 'URL carries userinfo';
    const port = effectivePort(url);
    if (!allowedPorts.has(port)) return `port ${port} is not in IMGRELAY_ALLOWED_PORTS`;
    return hostReason(url.hostname, { isRefusedName, isAllowedHost, isBlockedHost, addressPolicy });
  };

  return {
    check(url) {
      // WHATWG hrefs are ASCII (punycode, percent-encoding), so characters are bytes.
      if (url.href.length > config.maxUrlBytes) {
        throw new RelayError('E_URL_TOO_LONG', `Source URL is longer than ${config.maxUrlBytes} bytes`);
      }
      // Before the other checks: a loop is named as such even when the URL would also be refused for its port.
      const loop = loopReason(url);
      if (loop !== undefined) {
        logger.debug({ source: url.href, reason: loop }, 'source refused: loop');
        throw loopError(loop);
      }
      const reason = reasonToRefuse(url);
      if (reason !== undefined) throw forbidden(logger, url, reason, 'parse');
    },
  };
}

/** The port a connection would use: explicit, or the scheme's default. */
export function effectivePort(url: URL): number {
  return url.port === '' ? (DEFAULT_PORTS[url.protocol] ?? 0) : Number(url.port);
}

/**
 * Logs the precise reason and returns the uniform 403 (also used by the connector). Connect-time refusals
 * are warnings: a public-looking name resolving to a refused address is a rebinding attempt or a mistake.
 */
export function forbidden(logger: Logger, url: URL | string, reason: string, stage: 'parse' | 'connect'): RelayError {
  const entry = { source: String(url), reason, stage };
  if (stage === 'connect') logger.warn(entry, 'source refused');
  else logger.debug(entry, 'source refused');
  return new RelayError('E_SOURCE_FORBIDDEN', SOURCE_FORBIDDEN_DETAIL);
}

interface HostMatchers {
  isRefusedName(host: string): boolean;
  isAllowedHost(host: string): boolean;
  isBlockedHost(host: string): boolean;
  addressPolicy: AddressPolicy;
}

function hostReason(rawHostname: string, m: HostMatchers): string | undefined {
  const host = normalizeHostname(rawHostname);
  if (host === '') return 'empty host';
  if (m.isBlockedHost(host)) return 'host matches IMGRELAY_BLOCKED_HOSTS';
  if (!m.isAllowedHost(host)) return 'host does not match IMGRELAY_ALLOWED_HOSTS';
  if (isIpLiteral(host)) return m.addressPolicy.refusalReason(host);
  if (m.isRefusedName(host)) return `name ${host} is internal by definition`;
  // A single label ("metadata", "intranet") is completed by the resolver's search domains into an
  // internal zone; public image hosts always have a dot.
  if (!host.includes('.')) return 'single-label name';
  return undefined;
}

/** WHATWG already rewrote every IPv4 spelling (2130706433, 0x7f.1, 0177.0.0.1) to dotted quad. */
function isIpLiteral(host: string): boolean {
  return host.startsWith('[') || /^\d{1,3}(\.\d{1,3}){3}$/.test(host);
}
