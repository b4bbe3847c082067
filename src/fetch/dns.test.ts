/**
 * The c-ares resolver of the guarded connector, against real DNS servers on loopback (test/helpers/dns-server.ts):
 * one that answers from a table, one black hole that never answers.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDnsServer, type TestDnsServer } from '../../test/helpers/dns-server.js';
import { RelayError } from '../errors.js';
import { clampTtl, createDnsResolver, DNS_MAX_TTL_S, DNS_MIN_TTL_S, resolverTimeouts } from './dns.js';

let server: TestDnsServer;
let blackHole: TestDnsServer;
beforeAll(async () => {
  [server, blackHole] = await Promise.all([startDnsServer(), startDnsServer({ blackHole: true })]);
  server.set('img.example', { a: ['93.184.215.14'], aaaa: ['2606:2800:21f:cb07:6820:80da:af6b:8b2c'], ttl: 60 });
  server.set('v4only.example', { a: ['93.184.215.15'], ttl: 60 });
  server.set('zero-ttl.example', { a: ['93.184.215.16'], ttl: 0 });
  server.set('noaddress.example', {});
});
afterAll(() => Promise.all([server.close(), blackHole.close()]));

const queriesFor = (dns: TestDnsServer, name: string) => dns.queries.filter((q) => q.name === name).length;

describe('createDnsResolver', () => {
  it('returns every A and AAAA address of a name, so the connector can check them all', async () => {
    const dns = createDnsResolver({ servers: [server.address], timeoutMs: 2000 });
    expect((await dns.resolve('img.example')).sort()).toEqual(['2606:2800:21f:cb07:6820:80da:af6b:8b2c', '93.184.215.14']);
    expect(await dns.resolve('v4only.example')).toEqual(['93.184.215.15']);
  });

  it('answers a repeat lookup from its cache until the TTL passes, then asks again', async () => {
    let now = 1_000_000;
    const dns = createDnsResolver({ servers: [server.address], timeoutMs: 2000, now: () => now });
    await dns.resolve('v4only.example');
    const asked = queriesFor(server, 'v4only.example');
    now += 59_000;
    await dns.resolve('V4ONLY.example.');
    expect(queriesFor(server, 'v4only.example')).toBe(asked);
    now += 2_000;
    await dns.resolve('v4only.example');
    expect(queriesFor(server, 'v4only.example')).toBe(asked + 2); // A and AAAA again
  });

  it('clamps a 0-second TTL up to the minimum, so a zero TTL cannot turn every miss into a lookup', async () => {
    let now = 0;
    const dns = createDnsResolver({ servers: [server.address], timeoutMs: 2000, now: () => now });
    await dns.resolve('zero-ttl.example');
    const asked = queriesFor(server, 'zero-ttl.example');
    now += DNS_MIN_TTL_S * 1000 - 1;
    await dns.resolve('zero-ttl.example');
    expect(queriesFor(server, 'zero-ttl.example')).toBe(asked);
    expect([clampTtl(0), clampTtl(86_400 * 7), clampTtl(60)]).toEqual([DNS_MIN_TTL_S, DNS_MAX_TTL_S, 60]);
  });

  it('sends one query for concurrent lookups of one name', async () => {
    server.set('burst.example', { a: ['93.184.215.17'] });
    const dns = createDnsResolver({ servers: [server.address], timeoutMs: 2000 });
    const answers = await Promise.all(Array.from({ length: 20 }, () => dns.resolve('burst.example')));
    expect(answers.every((a) => a[0] === '93.184.215.17')).toBe(true);
    expect(queriesFor(server, 'burst.example')).toBe(2); // one A, one AAAA
  });

  it('fails an unknown name, and a name without addresses, with 502 E_UPSTREAM', async () => {
    const dns = createDnsResolver({ servers: [server.address], timeoutMs: 2000 });
    for (const name of ['nxdomain.example', 'noaddress.example']) {
      await expect(dns.resolve(name)).rejects.toMatchObject({ code: 'E_UPSTREAM', status: 502 });
    }
  });

  it('ends a lookup against a black-holed server with 504 within its deadline', async () => {
    const dns = createDnsResolver({ servers: [blackHole.address], timeoutMs: 600 });
    const started = performance.now();
    const error = await dns.resolve('slow.example').catch((e: unknown) => e);
    const elapsed = performance.now() - started;
    expect(error).toBeInstanceOf(RelayError);
    expect((error as RelayError).code).toBe('E_UPSTREAM_TIMEOUT');
    expect(elapsed).toBeLessThan(600 + 1500);
    expect(queriesFor(blackHole, 'slow.example')).toBeGreaterThan(0); // it really asked c-ares' server
    dns.close();
  });

  it('keeps at most `concurrency` distinct names in flight; the queued ones still end by the deadline', async () => {
    const dns = createDnsResolver({ servers: [blackHole.address], timeoutMs: 800, concurrency: 2 });
    const names = Array.from({ length: 6 }, (_, i) => `flood-${i}.example`);
    const started = performance.now();
    const outcomes = Promise.allSettled(names.map((name) => dns.resolve(name)));
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(names.filter((name) => queriesFor(blackHole, name) > 0)).toHaveLength(2);
    const settled = await outcomes;
    expect(settled.every((s) => s.status === 'rejected' && (s.reason as RelayError).code === 'E_UPSTREAM_TIMEOUT')).toBe(true);
    expect(performance.now() - started).toBeLessThan(800 + 1500);
    dns.close();
  });

  it('gives c-ares a per-try timeout that fits its retries inside the deadline', () => {
    const { timeout, tries } = resolverTimeouts(5000);
    expect(timeout * (2 ** tries - 1)).toBeLessThanOrEqual(5000);
  });
});
