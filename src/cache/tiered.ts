/**
 * The read-through chain: memory → persistent store → loader (origin fetch, transform), with single-flight over
 * the whole chain, promotion of store hits to memory, write-behind to the store, and stale-while-revalidate.
 * The store handed in is guarded (src/cache/store-guard.ts): its failures are misses, never errors.
 */
import { RelayError } from '../errors.js';
import type { Logger } from '../logger.js';
import { type CacheKey, storeKey, type TextDigest } from './keys.js';
import type { MemoryTier } from './memory.js';
import { SingleFlight } from './single-flight.js';
import type { Store, StoredEntry } from './types.js';

export type CacheState = 'HIT-MEMORY' | 'HIT-STORE' | 'MISS' | 'STALE';

export interface Loaded {
  entry: StoredEntry;
  state: CacheState;
}

export interface Loader {
  /** Builds the entry from scratch (a miss). */
  load(): Promise<StoredEntry>;
  /** Refreshes an expired entry (conditional request to the origin); resolves to the entry to keep. */
  revalidate(stale: StoredEntry): Promise<StoredEntry>;
}

export interface WriteQueue {
  enqueue(key: string, entry: StoredEntry): boolean;
}

export interface TieredCacheDeps {
  memory: MemoryTier;
  store?: Store;
  writes?: WriteQueue;
  logger: Logger;
  /** Keeps background work alive (ctx.waitUntil on Workers; a tracked promise on Node). */
  defer: (work: Promise<unknown>) => void;
  now?: () => number;
  /** Hashes store keys; Web Crypto by default. Node passes node:crypto's: no thread-pool hop per key on a miss. */
  digest?: TextDigest;
}

export class TieredCache {
  private readonly flights = new SingleFlight<Loaded>();
  private readonly refreshes = new SingleFlight<StoredEntry>();
  private readonly now: () => number;
  /**
   * Store keys of CacheKey objects that are used again (the fast hit path keeps one per learned URL): two SHA-256
   * per store hit otherwise. Weak: a key object dropped by its holder drops its entry.
   */
  private readonly storeKeys = new WeakMap<CacheKey, Promise<string>>();

  constructor(private readonly deps: TieredCacheDeps) {
    this.now = deps.now ?? Date.now;
  }

  /** The entry for `key`, from the fastest tier that has it; concurrent misses run `loader` once. */
  get(key: CacheKey, loader: Loader): Promise<Loaded> {
    const hit = this.deps.memory.get(key.memory);
    if (hit) return Promise.resolve(this.serve(key, hit, 'HIT-MEMORY', loader));
    return this.flights.run(key.memory, () => this.lookupOrLoad(key, loader)).promise;
  }

  /** Revalidates now (single-flight per key) and returns the refreshed entry; used for a variant's source. */
  refresh(key: CacheKey, loader: Loader, stale: StoredEntry): Promise<StoredEntry> {
    return this.refreshes.run(key.memory, async () => {
      const fresh = await loader.revalidate(stale);
      await this.keep(key, fresh);
      return fresh;
    }).promise;
  }

  /**
   * A fresh entry from memory or the store, promoted to memory; undefined on a miss or a stale entry (those take
   * `get`, which loads or revalidates). The fast hit path uses this.
   */
  async lookupFresh(key: CacheKey): Promise<Loaded | undefined> {
    const hit = this.deps.memory.get(key.memory);
    if (hit) return this.isStale(hit) ? undefined : { entry: hit, state: 'HIT-MEMORY' };
    const stored = await this.fromStore(key);
    return stored && !this.isStale(stored) ? { entry: stored, state: 'HIT-STORE' } : undefined;
  }

  /** Whether the entry is past its expiry. */
  isStale(entry: StoredEntry): boolean {
    return entry.meta.expiresAt <= this.now();
  }

  /** Removes one key from memory and store (used when a revalidation finds the source gone). */
  async forget(key: CacheKey): Promise<void> {
    this.deps.memory.delete(key.memory);
    await this.deps.store?.delete(await this.storeKeyOf(key));
  }

  private async lookupOrLoad(key: CacheKey, loader: Loader): Promise<Loaded> {
    const stored = await this.fromStore(key);
    if (stored) return this.serve(key, stored, 'HIT-STORE', loader);
    const entry = await loader.load();
    await this.keep(key, entry);
    return { entry, state: 'MISS' };
  }

  /** The store key of `key`, hashed once per key object (a miss reads, then writes, the same key). */
  private storeKeyOf(key: CacheKey): Promise<string> {
    let hashed = this.storeKeys.get(key);
    if (!hashed) this.storeKeys.set(key, hashed = storeKey(key, this.deps.digest));
    return hashed;
  }

  /** A store hit, promoted to memory. */
  private async fromStore(key: CacheKey): Promise<StoredEntry | undefined> {
    if (!this.deps.store) return undefined;
    const stored = await this.deps.store.get(await this.storeKeyOf(key));
    if (stored) this.deps.memory.set(key.memory, { ...stored, source: key.source });
    return stored;
  }

  /** Fresh entries are served as they are; stale ones are served marked STALE while a refresh runs behind. */
  private serve(key: CacheKey, entry: StoredEntry, state: CacheState, loader: Loader): Loaded {
    if (!this.isStale(entry)) return { entry, state };
    this.deps.defer(this.refresh(key, loader, entry).catch(async (error) => {
      // The origin says the image is gone: stop serving it. Any other failure is stale-if-error: the stale copy
      // stays and keeps being served, and the next request tries again.
      if (error instanceof RelayError && error.code === 'E_SOURCE_NOT_FOUND') return this.forget(key);
      this.deps.logger.warn({ err: error, source: key.source }, 'revalidation failed; serving stale');
    }));
    return { entry, state: 'STALE' };
  }

  private async keep(key: CacheKey, entry: StoredEntry): Promise<void> {
    this.deps.memory.set(key.memory, { ...entry, source: key.source });
    if (this.deps.writes) this.deps.writes.enqueue(await this.storeKeyOf(key), entry);
  }
}
