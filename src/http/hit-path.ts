/**
 * The hit fast path. A request URL that was served once maps (bounded LRU) to what its parse produced —
 * source, canonical variant, caching options — so a repeat needs no URL parsing, no policy walk and no header
 * building: one map lookup, one memory-tier lookup (or one store read), and headers prepared once per entry.
 * Anything unusual (stale entry, miss, unknown URL) returns undefined and takes the full path. Portable.
 */
import { LRUCache } from 'lru-cache';
import { type CacheKey, cacheKey, variantMaterial } from '../cache/keys.js';
import type { MemoryTier } from '../cache/memory.js';
import type { CacheState, TieredCache } from '../cache/tiered.js';
import type { StoredEntry } from '../cache/types.js';
import { acceptBucket } from '../transform/negotiate.js';
import { type CachePolicy, ageOf, responseFreshness } from './cache-control.js';
import { type HeaderOptions, imageHeaders } from './image-response.js';

/** What a served URL resolved to; enough to find its entry again and to answer for it. */
export interface RouteInfo {
  /** The URL form, for metrics. */
  form: string;
  source: string;
  canonicalSpec: string;
  varyAccept: boolean;
  /** The configured Cache-Control ceiling with this URL's `maxage=`. */
  caching: CachePolicy;
  headerOptions: Omit<HeaderOptions, 'state' | 'varyAccept' | 'serverTiming' | 'cacheControl' | 'age'>;
}

export interface FastHit {
  form: string;
  /** The canonical source URL (its host goes in a sampled request log line). */
  source: string;
  state: CacheState;
  body: Uint8Array;
  headers: Record<string, string>;
}


/**
 * Memory-tier bytes per remembered URL. A URL costs ~1 KiB of JS heap, and its prepared headers about as much
 * (measured: 969 and 1,077 bytes), none of it counted by the tier; so the fast path's own memory stays near 6 % of
 * the tier's budget (8,192 URLs, ~16 MiB, at 256 MiB) instead of growing to ~55 MiB on a long run. A tier of
 * variants of 32 KiB or more has a URL for every entry; with smaller ones, the least recently served URLs take the
 * full path on their next hit (as a first request does) until they are learned again.
 */
const TIER_BYTES_PER_ROUTE = 32 * 1024;

/** How many URLs the fast path remembers for a memory tier of `tierBytes` (at least 1,000: store hits use it too). */
export function routeBound(tierBytes: number): number {
  return Math.min(50_000, Math.max(1_000, Math.round(tierBytes / TIER_BYTES_PER_ROUTE)));
}

/**
 * An entry's response headers for one URL, built once and copied with a new Cache-Control and Age only when the
 * entry's age (whole seconds) changes: they are all that move (cache-control.ts). One object per URL, as before.
 */
interface Prepared {
  ageS: number;
  headers: Record<string, string>;
}

export interface HitPathOptions {
  /** URLs remembered (least recently served forgotten first); prepared header sets are bounded alike. */
  maxRoutes?: number;
  now?: () => number;
}

export class HitPath {
  private readonly routes: LRUCache<string, RouteInfo>;
  private readonly buckets = new Map<string, 'avif' | 'webp' | 'base'>();
  /**
   * Response headers by URL, entry version (ETag + stored-at + expiry) and tier: a store hit decodes a new entry
   * object each time, so identity would not do; the version does, and a replaced or revalidated entry gets new ones.
   */
  private readonly prepared: LRUCache<string, Prepared>;
  /** One CacheKey object per learned URL and format bucket, so the tiered cache can remember its store key. */
  private readonly keys = new WeakMap<RouteInfo, Map<string, CacheKey>>();
  private readonly now: () => number;
  private learned?: (pathAndQuery: string) => void;

  constructor(
    private readonly memory: MemoryTier,
    private readonly cache?: TieredCache,
    options: HitPathOptions = {},
  ) {
    const max = options.maxRoutes ?? routeBound(0);
    this.routes = new LRUCache({ max });
    this.prepared = new LRUCache({ max });
    this.now = options.now ?? Date.now;
  }

  /** Learns a URL after the full path served it from its canonical entry. */
  remember(pathAndQuery: string, route: RouteInfo): void {
    this.routes.set(pathAndQuery, route);
    this.learned?.(pathAndQuery);
  }

  /**
   * `listener` hears of each URL as it is learned: the entry is built and in memory, its response not yet written
   * (node-hit.ts answers the identical requests waiting for it then). One listener: there is one fast path.
   */
  onLearned(listener: (pathAndQuery: string) => void): void {
    this.learned = listener;
  }

  /**
   * A fresh memory hit for `pathAndQuery` with its full response headers, or undefined. Synchronous. `state` is
   * `MISS` for a request that waited for an identical one to build the entry (DESIGN: a coalesced waiter is a MISS).
   */
  lookup(pathAndQuery: string, accept: string | undefined, state: 'HIT-MEMORY' | 'MISS' = 'HIT-MEMORY'): FastHit | undefined {
    const found = this.resolve(pathAndQuery, accept);
    const entry = found && this.memory.get(found.key.memory);
    const now = this.now();
    if (!found || !entry || entry.meta.expiresAt <= now) return undefined;
    return this.hit(found.route, pathAndQuery, entry, state, now);
  }

  /** Like `lookup`, falling back to the persistent store (a store hit is promoted to memory). */
  async lookupStored(pathAndQuery: string, accept: string | undefined): Promise<FastHit | undefined> {
    const found = this.resolve(pathAndQuery, accept);
    const loaded = found && await this.cache?.lookupFresh(found.key);
    return loaded ? this.hit(found.route, pathAndQuery, loaded.entry, loaded.state, this.now()) : undefined;
  }

  private resolve(pathAndQuery: string, accept: string | undefined): { route: RouteInfo; key: CacheKey } | undefined {
    const route = this.routes.get(pathAndQuery);
    if (!route) return undefined;
    const bucket = route.varyAccept ? this.bucketOf(accept ?? '') : undefined;
    let keys = this.keys.get(route);
    if (!keys) this.keys.set(route, keys = new Map());
    let key = keys.get(bucket ?? '');
    if (!key) keys.set(bucket ?? '', key = cacheKey(route.source, variantMaterial(route.canonicalSpec, bucket)));
    return { route, key };
  }

  private hit(route: RouteInfo, pathAndQuery: string, entry: StoredEntry, state: CacheState, now: number): FastHit {
    return { form: route.form, source: route.source, state, body: entry.body,
      headers: this.headersFor(entry, pathAndQuery, route, state, now) };
  }

  /** Forgets every learned URL (purges keep entries out of memory already; this only bounds stale routes). */
  clear(): void {
    this.routes.clear();
  }

  private bucketOf(accept: string): 'avif' | 'webp' | 'base' {
    let bucket = this.buckets.get(accept);
    if (bucket === undefined) {
      bucket = acceptBucket(accept);
      // Accept strings are few (one per browser build); the bound only guards against junk headers.
      if (this.buckets.size > 1000) this.buckets.clear();
      this.buckets.set(accept, bucket);
    }
    return bucket;
  }

  private headersFor(
    entry: StoredEntry, pathAndQuery: string, route: RouteInfo, state: CacheState, now: number,
  ): Record<string, string> {
    const meta = entry.meta;
    const id = `${state}\n${meta.etag}\n${meta.storedAt}\n${meta.expiresAt}\n${pathAndQuery}`;
    let prepared = this.prepared.get(id);
    if (!prepared) {
      const headers = imageHeaders(entry, {
        ...route.headerOptions, cacheControl: '', state, varyAccept: route.varyAccept, serverTiming: `cache;desc=${state}`,
      });
      prepared = { ageS: -1, headers };
      this.prepared.set(id, prepared);
    }
    // Per request: a subtraction, a division and a compare; a new object only once a second per entry served.
    const ageS = ageOf(meta, now);
    if (prepared.ageS !== ageS) {
      const { cacheControl, age } = responseFreshness(meta, now, route.caching, false);
      // A copy, not an update: a response being written keeps the object it was given.
      prepared.headers = { ...prepared.headers, 'cache-control': cacheControl, age };
      prepared.ageS = ageS;
    }
    return prepared.headers;
  }
}
