/**
 * The c-ares resolver of the guarded connector, against real DNS servers on loopback (test/helpers/dns-server.ts):
 * one that answers from a table, one black hole that never answers.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDnsServer, type TestDnsServer } from '../../test/helpers/dns-server.js';
import { RelayError } from '../errors.js';
import {
  clampTtl, createDnsResolver, DNS_MAX_TTL_S, DNS_MIN_TTL_S, DNS_NEGATIVE_TTL_S, DNS_ZONE_CONCURRENCY, resolverTimeouts,
} from './dns.js';

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

  it('gives c-ares a per-try timeout that fits its retries over every server inside the deadline', () => {
    for (const servers of [1, 2, 3, 6]) {
      const { timeout, tries } = resolverTimeouts(5000, servers);
      expect(2 * servers * timeout * (2 ** tries - 1)).toBeLessThanOrEqual(5000); // c-ares may double a try
    }
  });
});

describe('a black-holed zone (issue #14: one client must not stall DNS for every other host)', () => {
  let mixed: TestDnsServer;
  beforeAll(async () => {
    mixed = await startDnsServer({ blackHole: (name) => name.endsWith('.hole.example') });
    mixed.set('fresh.example', { a: ['93.184.215.20'], ttl: 60 });
  });
  afterAll(() => mixed.close());
  const holeNamesAsked = () => new Set(mixed.queries.filter((q) => q.name.endsWith('.hole.example')).map((q) => q.name));

  it('64 random names under it hold only its zone slots: another host resolves while every one of them still hangs', async () => {
    const timeoutMs = 1500;
    const dns = createDnsResolver({ servers: [mixed.address], timeoutMs });
    let settled = 0;
    const started = performance.now();
    const flood = Array.from({ length: 64 }, (_, i) => dns.resolve(`r${i}-${Math.random().toString(36).slice(2)}.hole.example`)
      .catch((e: unknown) => e).finally(() => { settled++; }));
    await until(() => holeNamesAsked().size >= DNS_ZONE_CONCURRENCY);

    expect(await dns.resolve('fresh.example')).toEqual(['93.184.215.20']);
    expect(settled).toBe(0); // resolved before any of the black-holed lookups settled
    expect(holeNamesAsked().size).toBeLessThanOrEqual(DNS_ZONE_CONCURRENCY); // the zone took only its own slots

    const outcomes = await Promise.all(flood);
    expect(outcomes.every((e) => (e as RelayError).code === 'E_UPSTREAM_TIMEOUT')).toBe(true);
    expect(performance.now() - started).toBeLessThan(timeoutMs + 1500);
    dns.close();
  });

  it('remembers a name that timed out: a repeat fails at once, without a new query, until the negative TTL passes', async () => {
    let now = 5_000_000;
    const timeoutMs = 1500;
    const dns = createDnsResolver({ servers: [mixed.address], timeoutMs, now: () => now });
    await expect(dns.resolve('again.hole.example')).rejects.toMatchObject({ code: 'E_UPSTREAM_TIMEOUT', status: 504 });
    const asked = queriesFor(mixed, 'again.hole.example');
    const started = performance.now();
    await expect(dns.resolve('again.hole.example')).rejects.toMatchObject({ code: 'E_UPSTREAM_TIMEOUT' });
    expect(performance.now() - started).toBeLessThan(timeoutMs / 2); // a real lookup would take the whole deadline
    expect(queriesFor(mixed, 'again.hole.example')).toBe(asked);
    now += DNS_NEGATIVE_TTL_S * 1000 + 1;
    await expect(dns.resolve('again.hole.example')).rejects.toMatchObject({ code: 'E_UPSTREAM_TIMEOUT' });
    expect(queriesFor(mixed, 'again.hole.example')).toBeGreaterThan(asked);
    dns.close();
  });

  it('remembers a name that does not exist for the negative TTL (no query per repeat miss)', async () => {
    let now = 7_000_000;
    const dns = createDnsResolver({ servers: [server.address], timeoutMs: 2000, now: () => now });
    await expect(dns.resolve('never-was.example')).rejects.toMatchObject({ code: 'E_UPSTREAM', status: 502 });
    const asked = queriesFor(server, 'never-was.example');
    await expect(dns.resolve('never-was.example')).rejects.toMatchObject({ code: 'E_UPSTREAM', status: 502 });
    expect(queriesFor(server, 'never-was.example')).toBe(asked);
    now += DNS_NEGATIVE_TTL_S * 1000 + 1;
    await expect(dns.resolve('never-was.example')).rejects.toMatchObject({ code: 'E_UPSTREAM' });
    expect(queriesFor(server, 'never-was.example')).toBe(asked * 2);
  });

  it('with three dead servers, c-ares itself stops asking within the deadline (not three times it)', async () => {
    const holes = await Promise.all([1, 2, 3].map(() => startDnsServer({ blackHole: true })));
    try {
      const timeoutMs = 3000; // c-ares floors a try at ~250 ms: 3 servers × 2 tries need this much to fit
      const dns = createDnsResolver({ servers: holes.map((h) => h.address), timeoutMs });
      const started = performance.now();
      await expect(dns.resolve('three-dead.example')).rejects.toMatchObject({ code: 'E_UPSTREAM_TIMEOUT' });
      // Unfixed (a try = the deadline / 3), c-ares sends its next tries at ~1.3 and 2 × the deadline: wait past the first.
      await new Promise((resolve) => setTimeout(resolve, 1.6 * timeoutMs - (performance.now() - started)));
      const sent = holes.flatMap((h) => h.queries.filter((q) => q.name === 'three-dead.example').map((q) => q.at - started));
      expect(sent.length).toBeGreaterThanOrEqual(3); // every server was really asked
      expect(Math.max(...sent)).toBeLessThan(timeoutMs + 600);
      dns.close();
    } finally {
      await Promise.all(holes.map((h) => h.close()));
    }
  });
});

async function until(condition: () => boolean, timeoutMs = 3000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!condition()) {
    if (performance.now() > deadline) throw new Error('condition not reached in time');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}
