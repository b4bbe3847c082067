/**
 * The undici `connect` function that makes the address check honest (Node only): it resolves the host itself
 * (IMGRELAY_RESOLVE first, then the c-ares resolver of dns.ts: never `dns.lookup`, which would run on libuv's
 * thread pool), checks EVERY address, and hands
 * undici's own connector the checked address, so the socket goes exactly where the check looked and no
 * second resolution can be raced (no TOCTOU). IP-literal hosts, which Node would never look up, are
 * checked here too. TLS keeps the original host as servername (undici derives it from `host`, untouched).
 */
import { isIP } from 'node:net';
import { buildConnector } from 'undici';
import type { ResolveRule } from '../config.js';
import type { Logger } from '../logger.js';
import type { AddressPolicy } from './address-policy.js';
import { normalizeHostname } from './host-glob.js';
import { forbidden } from './source-policy.js';

export interface GuardedConnectorOptions {
  addressPolicy: AddressPolicy;
  /** IMGRELAY_RESOLVE: keyed by host AND port; may change the target port (curl --connect-to). */
  resolveRules: readonly ResolveRule[];
  /** Bounds the TCP/TLS handshake (the resolver has its own deadline, the same value). */
  connectTimeoutMs: number;
  /** Every address of a name (dns.ts); throws RelayError 502/504. */
  resolveName(host: string): Promise<string[]>;
  logger: Logger;
}

export interface ConnectTarget {
  address: string;
  port: number;
}

export function createGuardedConnector(options: GuardedConnectorOptions): buildConnector.connector {
  const connectToAddress = buildConnector({ timeout: options.connectTimeoutMs });
  return (connectOptions, callback) => {
    resolveTarget(connectOptions, options).then(
      (target) => connectToAddress({ ...connectOptions, hostname: target.address, port: String(target.port) }, callback),
      (error: Error) => callback(error, null),
    );
  };
}

/** Where a connection for `hostname:port` must go, after the address check; throws RelayError otherwise. */
export async function resolveTarget(
  { hostname, protocol, port }: Pick<buildConnector.Options, 'hostname' | 'protocol' | 'port'>,
  options: GuardedConnectorOptions,
): Promise<ConnectTarget> {
  const host = normalizeHostname(hostname.replace(/^\[|\]$/g, ''));
  const portNumber = Number(port) || (protocol === 'https:' ? 443 : 80);
  const rule = options.resolveRules.find((r) => normalizeHostname(r.host) === host && r.port === portNumber);
  const addresses = rule ? [rule.address] : isIP(host) ? [host] : await options.resolveName(host);
  for (const address of addresses) {
    const reason = options.addressPolicy.refusalReason(address);
    // One refused address refuses the name: a public name that also answers with a private address is a
    // rebinding trick (or a misconfiguration), and the next connection might pick the private one.
    if (reason !== undefined) {
      throw forbidden(options.logger, `${protocol}//${host}:${portNumber}`, `${address}: ${reason}`, 'connect');
    }
  }
  return { address: addresses[0], port: rule?.targetPort ?? portNumber };
}
