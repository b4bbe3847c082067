/**
 * Where the guarded connector sends a connection. Names are looked up through a real DNS server on loopback
 * (test/helpers/dns-server.ts), so these tests send nothing to the machine's resolver.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDnsServer, type TestDnsServer } from '../../test/helpers/dns-server.js';
import { parseResolveRule, type ResolveRule } from '../config.js';
import { RelayError } from '../errors.js';
import { silentLogger } from '../logger.js';
import { createAddressPolicy } from './address-policy.js';
import { resolveTarget } from './connector.js';
import { createDnsResolver } from './dns.js';
import { SOURCE_FORBIDDEN_DETAIL } from './source-policy.js';

let dnsServer: TestDnsServer;
beforeAll(async () => {
  dnsServer = await startDnsServer();
  dnsServer.set('loopback.example', { a: ['127.0.0.1'], aaaa: ['::1'] });
  dnsServer.set('mixed.example', { a: ['93.184.215.14', '127.0.0.1'] });
});
afterAll(() => dnsServer.close());

function options(allow: string[], resolve: string[] = []) {
  const dns = createDnsResolver({ servers: [dnsServer.address], timeoutMs: 2000 });
  return {
    addressPolicy: createAddressPolicy(allow),
    resolveRules: resolve.map((r) => parseResolveRule(r) as ResolveRule),
    connectTimeoutMs: 2000,
    logger: silentLogger,
    resolveName: (host: string) => dns.resolve(host),
  };
}
const http = (hostname: string, port = '') => ({ hostname, port, protocol: 'http:' });

describe('resolveTarget', () => {
  it('sends an IMGRELAY_RESOLVE host:port to its address and target port', async () => {
    const target = await resolveTarget(http('zkres2.myzaker.com'), options(['127.0.0.0/8'],
      ['zkres2.myzaker.com:80:127.0.0.1:8089']));
    expect(target).toEqual({ address: '127.0.0.1', port: 8089 });
  });

  it('keys IMGRELAY_RESOLVE by port too: another port of the same host is looked up normally', async () => {
    const opts = options(['127.0.0.0/8', '::1/128'], ['loopback.example:80:[::1]:9999']);
    expect(await resolveTarget(http('loopback.example'), opts)).toEqual({ address: '::1', port: 9999 });
    const other = await resolveTarget(http('loopback.example', '81'), opts);
    expect(other.port).toBe(81);
    expect(['127.0.0.1', '::1']).toContain(other.address);
  });

  it('matches a trailing-dot host to its IMGRELAY_RESOLVE rule and keeps the port when none is given', async () => {
    const target = await resolveTarget({ hostname: 'img.example.com.', port: '443', protocol: 'https:' },
      options(['127.0.0.0/8'], ['img.example.com:443:127.0.0.1']));
    expect(target).toEqual({ address: '127.0.0.1', port: 443 });
  });

  it('still checks an IMGRELAY_RESOLVE address, with the uniform 403', async () => {
    const error = await resolveTarget(http('img.example.com'), options([], ['img.example.com:80:127.0.0.1']))
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RelayError);
    expect([(error as RelayError).status, (error as RelayError).detail]).toEqual([403, SOURCE_FORBIDDEN_DETAIL]);
  });

  it('checks IP-literal hosts (bracketed IPv6 included), which are never looked up', async () => {
    await expect(resolveTarget(http('[::1]'), options([]))).rejects.toMatchObject({ code: 'E_SOURCE_FORBIDDEN' });
    await expect(resolveTarget(http('::1', '8080'), options(['::1/128']))).resolves.toEqual({ address: '::1', port: 8080 });
  });

  it('checks the addresses a real lookup returns', async () => {
    await expect(resolveTarget(http('loopback.example'), options([]))).rejects.toMatchObject({ code: 'E_SOURCE_FORBIDDEN' });
  });

  it('refuses a name when one of its addresses is refused, even if another is public', async () => {
    await expect(resolveTarget(http('mixed.example'), options([]))).rejects.toMatchObject({ code: 'E_SOURCE_FORBIDDEN' });
  });

  it('connects to a checked address of a name whose addresses are all allowed', async () => {
    const target = await resolveTarget(http('loopback.example'), options(['127.0.0.0/8', '::1/128']));
    expect(['127.0.0.1', '::1']).toContain(target.address);
  });
});
