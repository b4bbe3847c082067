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
  /** Builds the entry from scratch (a miss); `signal` aborts once every request waiting for it went away. */
  load(signal?: AbortSignal): Promise<StoredEntry>;
  /** Refreshes an expired entry (conditional request to the origin); resolves to the entry to keep. */
  revalidate(stale: StoredEntry): Promise<StoredEntry>;
}

export interface WriteQueue {
  enqueue(key: string, entry: StoredEntry): boolean;
  /** An entry queued or being written: read back before the store, which may not have it yet. */
  peek?(key: string): StoredEntry | undefined;
}

export interface GetOptions {
  /**
   * The entry is only an input to build another one (a variant's source). Memory then keeps it only when there is
   * no persistent store to read it back from: a ~1 MB source used once or twice would push out dozens of the
   * variants that are actually served, and retaining it costs every miss fresh memory (measured on 2 cores: ~1–2 ms
   * of CPU per cold miss, 3–7% of cold JPEG throughput).
   */
  input?: boolean;
  /** The request's signal: a miss whose every waiter aborted is cancelled (single-flight.ts). */
  signal?: AbortSignal;
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
  get(key: CacheKey, loader: Loader, options: GetOptions = {}): Promise<Loaded> {
    const hit = this.deps.memory.get(key.memory);
    if (hit) return Promise.resolve(this.serve(key, hit, 'HIT-MEMORY', loader, options));
    return this.flights.run(key.memory, (signal) => this.lookupOrLoad(key, loader, options, signal), options.signal).promise;
  }

  /** Revalidates now (single-flight per key) and returns the refreshed entry; used for a variant's source. */
  refresh(key: CacheKey, loader: Loader, stale: StoredEntry, options: GetOptions = {}): Promise<StoredEntry> {
    return this.refreshes.run(key.memory, async () => {
      const fresh = await loader.revalidate(stale);
      await this.keep(key, fresh, this.keepsInMemory(options));
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
    const stored = await this.fromStore(key, true);
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

  private keepsInMemory(options: GetOptions): boolean {
    return !options.input || !this.deps.store;
  }

  private async lookupOrLoad(key: CacheKey, loader: Loader, options: GetOptions, signal: AbortSignal): Promise<Loaded> {
    const inMemory = this.keepsInMemory(options);
    const stored = await this.fromStore(key, inMemory);
    if (stored) return this.serve(key, stored, 'HIT-STORE', loader, options);
    const entry = await loader.load(signal);
    await this.keep(key, entry, inMemory);
    return { entry, state: 'MISS' };
  }

  /** The store key of `key`, hashed once per key object (a miss reads, then writes, the same key). */
  private storeKeyOf(key: CacheKey): Promise<string> {
    let hashed = this.storeKeys.get(key);
    if (!hashed) this.storeKeys.set(key, hashed = storeKey(key, this.deps.digest));
    return hashed;
  }

  /** A store hit (or a write still on its way to the store), promoted to memory unless `inMemory` is false. */
  private async fromStore(key: CacheKey, inMemory: boolean): Promise<StoredEntry | undefined> {
    if (!this.deps.store) return undefined;
    const storeKey = await this.storeKeyOf(key);
    const stored = this.deps.writes?.peek?.(storeKey) ?? await this.deps.store.get(storeKey);
    if (stored && inMemory) this.deps.memory.set(key.memory, { ...stored, source: key.source });
    return stored;
  }

  /** Fresh entries are served as they are; stale ones are served marked STALE while a refresh runs behind. */
  private serve(key: CacheKey, entry: StoredEntry, state: CacheState, loader: Loader, options: GetOptions): Loaded {
    if (!this.isStale(entry)) return { entry, state };
    this.deps.defer(this.refresh(key, loader, entry, options).catch(async (error) => {
      // The origin says the image is gone: stop serving it. Any other failure is stale-if-error: the stale copy
      // stays and keeps being served, and the next request tries again.
      if (error instanceof RelayError && error.code === 'E_SOURCE_NOT_FOUND') return this.forget(key);
      this.deps.logger.warn({ err: error, source: key.source }, 'revalidation failed; serving stale');
    }));
    return { entry, state: 'STALE' };
  }

  private async keep(key: CacheKey, entry: StoredEntry, inMemory = true): Promise<void> {
    if (inMemory) this.deps.memory.set(key.memory, { ...entry, source: key.source });
    if (this.deps.writes) this.deps.writes.enqueue(await this.storeKeyOf(key), entry);
  }
}
