/**
 * The read-through chain: memory → persistent store → loader (origin fetch, transform), with single-flight over
 * the whole chain, promotion of store hits to memory, write-behind to the store, and stale-while-revalidate.
 * The store handed in is guarded (src/cache/store-guard.ts): its failures are misses, never errors.
 */
import { type StageTimings, timeStage } from '../observe/stage-timings.js';
import { RelayError } from '../errors.js';
import type { Logger } from '../logger.js';
import { type CacheKey, storeKey, type TextDigest } from './keys.js';
import type { MemoryTier } from './memory.js';
import { fenceCovers, fencePredates } from './fenced-store.js';
import { DEFAULT_SKEW_MS, type PurgeFence, type Ticket } from './purge-fence.js';
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
  /** The request's stage timings: its store read is added as `store` (src/observe/stage-timings.ts). */
  timings?: StageTimings;
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
  /** Purges fence work that began before them (purge-fence.ts); without one nothing is fenced. */
  fence?: PurgeFence;
  /**
   * False until the fence knows every purge that can still cover a stored entry (the purge log's first complete
   * read): store reads are then misses, which is always safe. Absent: always ready.
   */
  storeReady?: () => boolean;
  /**
   * The read check's window for stored entries of older versions (no `startedAt`, only `storedAt`, stamped when a
   * load ended): the longest a load can take plus the clock skew (fenced-store.ts). Default: the skew alone.
   */
  legacyWindowMs?: number;
}

/** Loads again at most this often when purges keep fencing a load's result (then 503 E_OVERLOADED, Retry-After 1). */
const FENCED_RELOADS = 8;

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
  refresh(key: CacheKey, loader: Loader, stale: StoredEntry, options: GetOptions = {}, since?: Ticket): Promise<StoredEntry> {
    return this.refreshes.run(key.memory, (signal) => this.fenced(key, async (ticket) => {
      const inMemory = this.keepsInMemory(options);
      const fresh = await this.keep(key, await loader.revalidate(stale), inMemory, since ?? ticket);
      // A purge came while it ran: its bytes (a 304 keeps the purged ones) go to no one, not even to requests that
      // joined it after the purge; a load builds the entry anew.
      return fresh.kept ? fresh.entry : (await this.load(key, loader, inMemory, signal)).entry;
    })).promise;
  }

  /**
   * A fresh entry from memory or the store, promoted to memory; undefined on a miss or a stale entry (those take
   * `get`, which loads or revalidates). The fast hit path uses this.
   */
  async lookupFresh(key: CacheKey): Promise<Loaded | undefined> {
    const hit = this.deps.memory.get(key.memory);
    if (hit) return this.isStale(hit) ? undefined : { entry: hit, state: 'HIT-MEMORY' };
    const stored = (await this.fromStore(key, true))?.entry;
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
    const read = await timeStage(options.timings, 'store', () => this.fromStore(key, inMemory));
    if (read) return this.serve(key, read.entry, 'HIT-STORE', loader, options, read.ticket);
    return this.load(key, loader, inMemory, signal);
  }

  /**
   * A miss: load and keep. A purge covering the source while the load ran drops its result and the load runs again:
   * requests that joined this flight after the purge answered must not get the old bytes (nor does anyone else).
   */
  private async load(key: CacheKey, loader: Loader, inMemory: boolean, signal: AbortSignal, attempt = 0)
    : Promise<Loaded> {
    const result = await this.fenced(key, async (ticket) => this.keep(key, await loader.load(signal), inMemory, ticket));
    if (result.kept) return { entry: result.entry, state: 'MISS' };
    // Purges keep coming faster than the source loads: its result is pre-purge bytes, served to no one.
    if (attempt >= FENCED_RELOADS) {
      throw new RelayError('E_OVERLOADED', 'The image is being purged repeatedly; retry shortly', { retryAfter: 1 });
    }
    return this.load(key, loader, inMemory, signal, attempt + 1);
  }

  /** Runs `work` with a fence ticket taken as it starts (counted in flight until it ends). */
  private async fenced<T>(key: CacheKey, work: (ticket: Ticket | undefined) => Promise<T>): Promise<T> {
    const ticket = this.deps.fence?.begin(key.source);
    try {
      return await work(ticket);
    } finally {
      if (ticket) this.deps.fence?.release(ticket);
    }
  }

  /** The store key of `key`, hashed once per key object (a miss reads, then writes, the same key). */
  private storeKeyOf(key: CacheKey): Promise<string> {
    let hashed = this.storeKeys.get(key);
    if (!hashed) this.storeKeys.set(key, hashed = storeKey(key, this.deps.digest));
    return hashed;
  }

  /**
   * A store hit (or a write still on its way to the store), promoted to memory unless `inMemory` is false, with the
   * ticket taken before the read. Entries a purge fences are misses (`admitsRead`).
   */
  private async fromStore(key: CacheKey, inMemory: boolean): Promise<{ entry: StoredEntry; ticket?: Ticket } | undefined> {
    const { store, fence, storeReady } = this.deps;
    if (!store || (storeReady && !storeReady())) return undefined;
    return this.fenced(key, async (ticket) => {
      const storeKey = await this.storeKeyOf(key);
      const queued = this.deps.writes?.peek?.(storeKey);
      const stored = queued && (!fence || fence.admits(queued)) ? queued : await store.get(storeKey);
      if (!stored) return undefined;
      if (fence && ticket && !this.admitsRead(key, storeKey, stored, ticket)) return undefined;
      if (inMemory) this.deps.memory.set(key.memory, { ...stored, source: key.source });
      return { entry: stored, ticket };
    });
  }

  /**
   * A read is refused when a purge covering the source came while it ran (the bytes may be the purged ones), or
   * when a purge on any instance covers the entry (the edge's read check, fenced-store.ts: a store write that landed
   * late); one that certainly predates the purge is deleted too, so the next reader does not meet it.
   */
  private admitsRead(key: CacheKey, storeKey: string, stored: StoredEntry, ticket: Ticket): boolean {
    const fence = this.deps.fence as PurgeFence;
    const { meta } = stored;
    if (fence.fencedSince(ticket, key.source, meta.tags)) {
      fence.fenced('promotion');
      return false;
    }
    if (!fenceCovers(fence, meta, this.deps.legacyWindowMs ?? DEFAULT_SKEW_MS, key.source)) return true;
    fence.fenced('read');
    if (fencePredates(fence, meta, key.source)) this.deps.defer(this.deps.store!.delete(storeKey).catch(() => undefined));
    return false;
  }

  /** Fresh entries are served as they are; stale ones are served marked STALE while a refresh runs behind. */
  private serve(key: CacheKey, entry: StoredEntry, state: CacheState, loader: Loader, options: GetOptions,
    readAt?: Ticket): Loaded {
    if (!this.isStale(entry)) return { entry, state };
    // The refresh is fenced from when the stale entry was read (a memory hit: now, in the same tick): a purge since
    // then covers its bytes, and a 304 would otherwise save them again.
    const since = readAt ?? this.deps.fence?.ticket();
    this.deps.defer(this.refresh(key, loader, entry, options, since).catch(async (error) => {
      // The origin says the image is gone: stop serving it. Any other failure is stale-if-error: the stale copy
      // stays and keeps being served, and the next request tries again.
      if (error instanceof RelayError && error.code === 'E_SOURCE_NOT_FOUND') return this.forget(key);
      this.deps.logger.warn({ err: error, source: key.source }, 'revalidation failed; serving stale');
    }));
    return { entry, state: 'STALE' };
  }

  /**
   * Saves a loaded entry to memory and queues its store write; `kept` is false (nothing saved) when a purge covering
   * the source came since `ticket`. The entry, saved or not, is dated (`startedAt`: when its bytes' work began) so
   * work built from it inherits its age, and other instances' reads can judge it; a saved one is stamped so the
   * write-behind queue checks the fence again when its write starts.
   */
  private async keep(key: CacheKey, entry: StoredEntry, inMemory: boolean, ticket: Ticket | undefined)
    : Promise<{ entry: StoredEntry; kept: boolean }> {
    const { fence, writes } = this.deps;
    let saved = entry;
    if (fence && ticket) {
      // Bytes derived from an older entry (a variant of a source read earlier, a 304) are as old as it is: a purge
      // after that entry's work began covers them too, even when this work began after the purge. Fresh bytes are
      // judged by the ticket alone: work that began after a purge was recorded began after it, whatever the
      // purger's clock says (a clock ahead of ours must not make every load of the source run again, in vain).
      const inherited = entry.meta.startedAt;
      const startedAt = Math.min(ticket.at, inherited ?? Infinity);
      const { tags } = entry.meta;
      saved = { body: entry.body, meta: { ...entry.meta, startedAt } };
      const old = inherited !== undefined && fence.predatesPurge(inherited, key.source, tags, 0);
      if (old || fence.fencedSince(ticket, key.source, tags)) {
        fence.fenced('memory');
        return { entry: saved, kept: false };
      }
      fence.stamp(saved, ticket, key.source);
    }
    if (inMemory) this.deps.memory.set(key.memory, { ...saved, source: key.source });
    if (writes) writes.enqueue(await this.storeKeyOf(key), saved);
    return { entry: saved, kept: true };
  }
}
