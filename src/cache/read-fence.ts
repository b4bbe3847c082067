/**
 * A purge fence for tiers that cannot be enumerated (the Workers Cache API) or that this process does not own
 * (R2, written by the Node service too): instead of finding every key of a purged source, every entry read from
 * them is checked against the purges this process knows of, and one produced before a purge that covers it is a
 * miss (and is deleted). Entries carry their canonical source URL and tags in their meta, so one check covers
 * every variant and format bucket of a source, and purges by URL, host, prefix, tag or everything alike.
 *
 * "Produced before" has a window: an entry whose bytes were fetched by work that started before the purge can be
 * stamped (storedAt) up to one fetch deadline after it, so an entry counts as covered while its storedAt is before
 * the purge's time plus `windowMs` (the longest a load can take, plus clock skew). The cost: for `windowMs` after
 * a purge, fresh copies of the purged sources are fetched again once per tier read instead of being cached.
 */
import type { Selectors } from '../admin/selectors.js';
import { MemoryTier, type MemoryEntry, type MemoryTierOptions } from './memory.js';
import type { EntryMeta, Store } from './types.js';

export interface PurgeFenceOptions {
  /** How long after a purge a freshly stamped entry still counts as work begun before it (see the module comment). */
  windowMs: number;
}

interface Index {
  all: number;
  sources: Map<string, number>;
  hosts: Map<string, number>;
  tags: Map<string, number>;
  prefixes: Array<[prefix: string, at: number]>;
}

export class PurgeFence {
  private readonly records = new Map<string, { at: number; selectors: Selectors }>();
  private index: Index = emptyIndex();
  /**
   * False until every purge that can still cover a cached entry is known (the first read of the log, or a backlog
   * too long for one poll): reads are then misses, which is always safe.
   */
  complete = false;
  /** Entries refused (read as a miss, or not written) because a purge covers them. */
  fenced = 0;

  constructor(private readonly options: PurgeFenceOptions) {}

  has(id: string): boolean {
    return this.records.has(id);
  }

  /** Records a purge made at `at` (ms since epoch) under a unique id (its purge-log key). */
  add(id: string, at: number, selectors: Selectors): void {
    if (this.records.has(id)) return;
    this.records.set(id, { at, selectors });
    addToIndex(this.index, at, selectors);
  }

  /** Forgets purges made before `before`: no entry they could cover is still cached (the caller bounds entry life). */
  prune(before: number): void {
    let removed = false;
    for (const [id, record] of this.records) {
      if (record.at < before) removed = this.records.delete(id);
    }
    if (!removed) return;
    this.index = emptyIndex();
    for (const { at, selectors } of this.records.values()) addToIndex(this.index, at, selectors);
  }

  /** Whether an entry was produced before (or within the window after) the latest purge that covers it. */
  covers(meta: EntryMeta): boolean {
    const latest = this.latestPurgeOf(meta.sourceUrl, meta.tags);
    return latest > 0 && meta.storedAt < latest + this.options.windowMs;
  }

  /** Whether an entry was certainly produced before the latest purge that covers it (not merely within the window). */
  predates(meta: EntryMeta): boolean {
    return meta.storedAt < this.latestPurgeOf(meta.sourceUrl, meta.tags);
  }

  /** Time of the latest known purge covering a source with these tags; 0 when none does. */
  latestPurgeOf(sourceUrl: string, tags: readonly string[]): number {
    const index = this.index;
    let latest = Math.max(index.all, index.sources.get(sourceUrl) ?? 0);
    for (const tag of tags) latest = Math.max(latest, index.tags.get(tag) ?? 0);
    for (const [prefix, at] of index.prefixes) if (at > latest && sourceUrl.startsWith(prefix)) latest = at;
    if (index.hosts.size > 0) {
      const url = parseUrl(sourceUrl);
      if (url) latest = Math.max(latest, index.hosts.get(url.hostname) ?? 0, index.hosts.get(url.host) ?? 0);
    }
    return latest;
  }
}

function parseUrl(text: string): URL | undefined {
  try {
    return new URL(text);
  } catch {
    return undefined;
  }
}

function emptyIndex(): Index {
  return { all: 0, sources: new Map(), hosts: new Map(), tags: new Map(), prefixes: [] };
}

function addToIndex(index: Index, at: number, selectors: Selectors): void {
  const later = (map: Map<string, number>, key: string) => map.set(key, Math.max(at, map.get(key) ?? 0));
  if (selectors.all) index.all = Math.max(index.all, at);
  for (const source of selectors.sources) later(index.sources, source);
  for (const host of selectors.hosts) later(index.hosts, host);
  for (const tag of selectors.tags) later(index.tags, tag);
  for (const prefix of selectors.prefixes) index.prefixes.push([prefix, at]);
}

/**
 * A store behind the fence: a covered entry read from it is a miss, and is deleted in the background when it predates
 * the purge (one stamped within the window may be another instance's fresh copy in a shared store); a covered
 * entry is never written to it (a load that began before the purge and ended after it); while the fence is not
 * complete every read is a miss. Deletes, prefix deletes and listings pass through.
 */
export function fenceStore(store: Store, fence: PurgeFence, defer: (work: Promise<unknown>) => void): Store {
  const refuse = (key: string, meta: EntryMeta | undefined): boolean => {
    if (!meta) return false;
    if (!fence.complete) return true;
    if (!fence.covers(meta)) return false;
    fence.fenced += 1;
    if (fence.predates(meta)) defer(store.delete(key).catch(() => {}));
    return true;
  };
  return {
    kind: store.kind,
    async get(key, signal) {
      const entry = await store.get(key, signal);
      return refuse(key, entry?.meta) ? undefined : entry;
    },
    head: store.head && (async (key, signal) => {
      const meta = await store.head!(key, signal);
      return refuse(key, meta) ? undefined : meta;
    }),
    async put(key, entry, signal) {
      if (fence.covers(entry.meta)) {
        fence.fenced += 1;
        return;
      }
      await store.put(key, entry, signal);
    },
    delete: (key, signal) => store.delete(key, signal),
    deletePrefix: (prefix, signal) => store.deletePrefix(prefix, signal),
    list: (prefix, signal) => store.list(prefix, signal),
    close: store.close && (() => store.close!()),
  };
}

/** The memory tier behind the fence: an entry a known purge covers is not kept (a load that began before it). */
export class FencedMemoryTier extends MemoryTier {
  constructor(options: MemoryTierOptions, private readonly fence: PurgeFence) {
    super(options);
  }

  override set(key: string, entry: MemoryEntry): void {
    if (this.fence.covers(entry.meta)) {
      this.fence.fenced += 1;
      return;
    }
    super.set(key, entry);
  }
}
