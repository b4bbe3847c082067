/**
 * Per-client limits on misses (IMGRELAY_MISS_RATE / IMGRELAY_MISS_BURST), on rate-limiter-flexible's memory limiter.
 *
 * The bucket: the library counts points per fixed window per key. A window of `burst` points lasting the time the
 * rate takes to earn `burst` tokens (`burst × period / count`) gives the configured long-run rate with at most
 * `burst` misses at once, as a token bucket would; the one difference is a window edge, where a client that spent its
 * burst just before it may spend another just after (2 × burst, once). `60/m` with the default burst: 60 per minute.
 *
 * Bounded memory: the library keeps one record AND one timer per key until its window ends, however many keys, so
 * 100k clients in a window would be 100k of each (test/rate-limit.test.ts shows it). An LRU of the clients seen
 * caps them: past `maxClients`, the least recently seen client's bucket is dropped (it starts full if that client
 * returns). Node only: the package index loads `cluster` (the Worker build never imports this file).
 */
import { LRUCache } from 'lru-cache';
import { RateLimiterMemory, RateLimiterRes } from 'rate-limiter-flexible';
import { RelayError } from '../errors.js';
import type { MissGate } from './miss-gate.js';
import { MAX_WINDOW_S, type MissRate, windowSeconds } from './miss-limit-config.js';

/**
 * Buckets kept at most. Measured here: ~450 bytes of heap per tracked client (record, timer, LRU entry), so ~45 MB
 * when full: a cost an operator does not have to plan for, and more distinct clients than one instance sees within
 * a window in normal traffic. Past it, a flood of distinct addresses (an IPv6 /48 holds 65,536 /64s) recycles buckets:
 * that flood is bounded by the transform queue and the in-flight budget, not by this per-client limit.
 */
export const DEFAULT_MAX_CLIENTS = 100_000;

export interface MissLimiterOptions {
  rate: MissRate;
  burst: number;
  maxClients?: number;
}

export class MissLimiter {
  private readonly limiter: RateLimiterMemory;
  /** The clients holding a bucket, least recently seen first out; dropping one drops its bucket and timer. */
  private readonly clients: LRUCache<string, true>;

  constructor(options: MissLimiterOptions) {
    const windowS = windowSeconds(options.rate, options.burst);
    // The configuration refuses these (miss-limit-config.ts); a longer window would silently limit nothing.
    if (windowS > MAX_WINDOW_S) throw new RangeError(`A miss-limit window of ${windowS} s is over ${MAX_WINDOW_S} s`);
    this.limiter = new RateLimiterMemory({ points: options.burst, duration: windowS, keyPrefix: '' });
    this.clients = new LRUCache<string, true>({
      max: options.maxClients ?? DEFAULT_MAX_CLIENTS,
      dispose: (_value, client) => void this.limiter.delete(client),
      noDisposeOnSet: true,
    });
  }

  /** The gate for the image service: resolves, or throws 429 E_RATE_LIMITED with the seconds until a token. */
  readonly gate: MissGate = async (client) => {
    if (client === undefined) return; // no connection address (nothing to key on): never the case for a live socket
    if (!this.clients.get(client)) this.clients.set(client, true);
    try {
      await this.limiter.consume(client);
    } catch (rejection) {
      if (!(rejection instanceof RateLimiterRes)) throw rejection;
      const retryAfter = Math.max(1, Math.ceil(rejection.msBeforeNext / 1000));
      throw new RelayError('E_RATE_LIMITED',
        `Too many uncached images from this client; retry in ${retryAfter} s (cached images are not limited)`, { retryAfter });
    }
  };

  /** Clients holding a bucket now (bounded by maxClients). */
  get trackedClients(): number {
    return this.clients.size;
  }

  /** Buckets inside the library now (its own count, to show the LRU really bounds it). */
  get buckets(): number {
    return this.limiter.dump().storage.length;
  }
}
