/**
 * Name resolution for the guarded connector, on c-ares (`dns.promises.Resolver`), never on libuv's thread pool.
 *
 * WHY not `dns.lookup`: it is getaddrinfo on the thread pool that sharp and the `fs` store share; a black-holed
 * resolver holds one pool thread per lookup for the system's own timeout (5 s × attempts), so a few slow names
 * stall every transform and store hit. c-ares runs on the event loop's sockets: a hanging query costs a timer.
 *
 * - A and AAAA are asked in parallel; every answer is returned, so the connector checks every address ("one
 *   refused address refuses the name"). A family that answers "no data" is simply empty; a name with no address
 *   at all is 502 (E_UPSTREAM); a resolver that does not answer within `timeoutMs` is 504 (E_UPSTREAM_TIMEOUT).
 * - Answers are cached for their DNS TTL, clamped to [MIN_TTL_S, MAX_TTL_S] (a 0-second TTL would make every miss
 *   a lookup; a day-long one would pin an address long after the owner moved), in an LRU of MAX_ENTRIES names.
 *   A name that does not exist, or whose lookup timed out, is remembered for NEGATIVE_TTL_S: repeat misses of it
 *   fail at once instead of taking a lookup slot again.
 * - Concurrent lookups of one name share one query; lookups of different names run at most `concurrency` at once,
 *   at most `zoneConcurrency` per zone (dns-gate.ts), and a slot is freed at the caller's deadline (queue wait
 *   counts against it), so neither a flood of random names nor one black-holed zone can starve other hosts.
 * - c-ares tries every server in each round, so the per-try timeout is the deadline shared by servers × tries.
 * - /etc/hosts is NOT consulted (c-ares queries DNS servers only): names it maps, like `localhost`, are refused by
 *   the source policy anyway; an operator who needs a fixed mapping uses IMGRELAY_RESOLVE, which is explicit and
 *   checked.
 */
import { Resolver } from 'node:dns/promises';
import { LRUCache } from 'lru-cache';
import { RelayError } from '../errors.js';
import { LookupGate, lookupZone } from './dns-gate.js';

export const DNS_MIN_TTL_S = 5;
export const DNS_MAX_TTL_S = 300;
export const DNS_MAX_ENTRIES = 2048;
export const DNS_CONCURRENCY = 32;
/** One zone may hold this many of the DNS_CONCURRENCY slots: 8 black-holed zones are needed to fill them all. */
export const DNS_ZONE_CONCURRENCY = 4;
/** How long "no such name" and "did not answer" are remembered: short, a fixed zone recovers within seconds. */
export const DNS_NEGATIVE_TTL_S = 5;
/** c-ares attempts per server; the per-try timeout is derived from the overall deadline (see resolverTimeouts). */
const TRIES = 2;

export interface DnsResolverOptions {
  /** `ip`, `ip:port` or `[v6]:port` (IMGRELAY_DNS_SERVERS); empty = the system's (/etc/resolv.conf). */
  servers: readonly string[];
  /** The whole lookup, queue wait included, ends by then (the connect timeout). */
  timeoutMs: number;
  concurrency?: number;
  zoneConcurrency?: number;
  /** Injectable clock for the TTL tests. */
  now?: () => number;
}

export interface DnsResolver {
  /** Every A and AAAA address of `host` (a name, not an IP literal). Throws RelayError 502/504. */
  resolve(host: string): Promise<string[]>;
  /** Stops outstanding queries (shutdown). */
  close(): void;
}

/** Addresses, or the failure to repeat (its code and message only: no cause is kept alive by the cache). */
type CachedAnswer = { addresses: string[]; expiresAt: number } | { failure: RelayError; expiresAt: number };

export function createDnsResolver(options: DnsResolverOptions): DnsResolver {
  const now = options.now ?? Date.now;
  const serverCount = options.servers.length || new Resolver().getServers().length || 1;
  const resolver = new Resolver(resolverTimeouts(options.timeoutMs, serverCount));
  if (options.servers.length > 0) resolver.setServers([...options.servers]);
  const cache = new LRUCache<string, CachedAnswer>({ max: DNS_MAX_ENTRIES });
  const inFlight = new Map<string, Promise<string[]>>();
  const gate = new LookupGate(options.concurrency ?? DNS_CONCURRENCY, options.zoneConcurrency ?? DNS_ZONE_CONCURRENCY);
  const remember = (host: string, answer: CachedAnswer) => cache.set(host, answer);

  const lookup = (host: string): Promise<string[]> => {
    const deadline = AbortSignal.timeout(options.timeoutMs);
    let asked = false;
    const shared = gate.run(lookupZone(host), deadline, async () => {
      asked = true;
      const answer = await queryBothFamilies(resolver, host);
      remember(host, { addresses: answer.addresses, expiresAt: now() + clampTtl(answer.ttlS) * 1000 });
      return answer.addresses;
    }).catch((error: unknown) => {
      const failure = error instanceof RelayError ? error : timedOut(host, options.timeoutMs);
      // Only the resolver's verdict is remembered: a lookup that timed out while queued says nothing about the name.
      if (asked && isNegative(failure)) remember(host, { failure: bare(failure), expiresAt: now() + DNS_NEGATIVE_TTL_S * 1000 });
      throw failure;
    }).finally(() => inFlight.delete(host));
    inFlight.set(host, shared);
    return withDeadline(shared, host, options.timeoutMs);
  };

  return {
    resolve(rawHost) {
      const host = rawHost.toLowerCase().replace(/\.$/, '');
      const cached = cache.get(host);
      if (cached && cached.expiresAt > now()) {
        return 'failure' in cached ? Promise.reject(bare(cached.failure)) : Promise.resolve(cached.addresses);
      }
      const pending = inFlight.get(host);
      return pending ? withDeadline(pending, host, options.timeoutMs) : lookup(host);
    },
    close: () => resolver.cancel(),
  };
}

/** A name that does not exist or did not answer; a refused or failing server (SERVFAIL, REFUSED) is not remembered. */
function isNegative(error: RelayError): boolean {
  if (error.code === 'E_UPSTREAM_TIMEOUT') return true;
  const cause = (error.cause as { code?: string } | undefined)?.code;
  return error.code === 'E_UPSTREAM' && cause !== undefined && NO_ADDRESS.has(cause);
}

const bare = (error: RelayError) => new RelayError(error.code, error.message);

/**
 * c-ares asks every server once per round and doubles the per-try timeout each round: `tries` rounds over `servers`
 * servers nominally take servers·t·(2^tries − 1). The c-ares in Node 20 (1.34) may give a try twice its timeout
 * (measured on loopback: 3 dead servers × 2 tries took 10–11 t, not 9 t), so t gets half the nominal share; the
 * resolver then gives up within the deadline instead of N × it with N servers, freeing its socket and query. It
 * floors a try at ~250 ms: with many servers and a short deadline it may overrun, and the gate's release at the
 * caller's deadline is what bounds the slot then.
 */
export function resolverTimeouts(timeoutMs: number, servers = 1): { timeout: number; tries: number } {
  const nominalRounds = Math.max(1, servers) * (2 ** TRIES - 1);
  return { timeout: Math.max(1, Math.floor(timeoutMs / (2 * nominalRounds))), tries: TRIES };
}

export function clampTtl(ttlS: number): number {
  return Math.min(DNS_MAX_TTL_S, Math.max(DNS_MIN_TTL_S, ttlS));
}

/** Codes c-ares uses for "this name (or this family) has no address": not failures of the resolver. */
const NO_ADDRESS = new Set(['ENODATA', 'ENOTFOUND']);

async function queryBothFamilies(resolver: Resolver, host: string): Promise<{ addresses: string[]; ttlS: number }> {
  const [v4, v6] = await Promise.allSettled([resolver.resolve4(host, { ttl: true }), resolver.resolve6(host, { ttl: true })]);
  const answers = [v4, v6].flatMap((r) => (r.status === 'fulfilled' ? r.value : []));
  const failures = [v4, v6].flatMap((r) => (r.status === 'rejected' ? [r.reason as { code?: string }] : []));
  if (answers.length === 0) {
    const timedOutFamily = failures.find((f) => f.code === 'ETIMEOUT');
    if (timedOutFamily) throw new RelayError('E_UPSTREAM_TIMEOUT', `DNS for ${host} did not answer`, { cause: timedOutFamily });
    const cause = failures.find((f) => !NO_ADDRESS.has(f.code ?? '')) ?? failures[0];
    throw new RelayError('E_UPSTREAM', 'Upstream host could not be resolved', { cause });
  }
  // One family answering is enough: the connector connects only to addresses it has checked, so an unanswered
  // family cannot smuggle an unchecked address into the connection.
  return { addresses: answers.map((a) => a.address), ttlS: Math.min(...answers.map((a) => a.ttl)) };
}

function timedOut(host: string, timeoutMs: number): RelayError {
  return new RelayError('E_UPSTREAM_TIMEOUT', `DNS lookup of ${host} did not finish within ${timeoutMs} ms`);
}

/** Races `work` against this caller's deadline; the shared query keeps running for the other callers. */
async function withDeadline(work: Promise<string[]>, host: string, timeoutMs: number): Promise<string[]> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(timedOut(host, timeoutMs)), timeoutMs);
  });
  try {
    return await Promise.race([work, deadline]);
  } finally {
    clearTimeout(timer);
  }
}
