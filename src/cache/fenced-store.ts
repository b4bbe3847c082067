/**
 * A store behind the purge fence (purge-fence.ts), for tiers that cannot be enumerated (the Workers Cache API) or
 * that this process does not own (R2, written by the Node service too): instead of finding every key of a purged
 * source, every entry read from them is checked against the purges the fence knows, and one whose work began before
 * a purge covering it is a miss. Entries carry their canonical source URL and tags in their meta, so one check covers
 * every variant and format bucket of a source, and purges by URL, host, prefix, tag or everything alike.
 *
 * The check is the fence's read check (`predatesPurge`): on the entry's `startedAt` (when the work producing its
 * bytes began, stamped by the TieredCache's ticket on the edge and on Node), within the fence's clock skew. Entries
 * of older versions carry only `storedAt`, stamped when a load ENDED, so for them the window is the longest a load
 * can take plus the skew (`legacyWindowMs`): a load begun before the purge can end that much after it.
 * The fence is the one index of purges; this file holds no state of its own.
 */
import type { PurgeFence } from './purge-fence.js';
import type { EntryMeta, Store } from './types.js';

export interface FencedStoreOptions {
  /**
   * False until every purge that can still cover a cached entry is known (the purge follower's first complete read
   * of the log): every read is then a miss, which is always safe.
   */
  ready: () => boolean;
  /** The window for entries without `startedAt` (see the module comment). */
  legacyWindowMs: number;
  /** Keeps a background delete alive (ctx.waitUntil). */
  defer: (work: Promise<unknown>) => void;
  /**
   * How far back the fence's knowledge reaches (its retention, less a margin for clocks): an entry whose work began
   * earlier is a miss, because a purge that covered it may be forgotten already. Such an entry is a write that
   * landed after the purge deleted the store's copies (another instance's queue, an isolate's write in flight) and
   * was never read while the fence still knew; without this, it would be served once the fence forgets.
   */
  horizonMs?: number;
  now?: () => number;
}

/**
 * Whether a known purge covers an entry: its work began before the purge, or within the tolerated window after.
 * `source` is the entry's canonical source (its meta's by default). The Node tiered cache uses this check too.
 */
export function fenceCovers(fence: PurgeFence, meta: EntryMeta, legacyWindowMs: number, source = meta.sourceUrl)
  : boolean {
  const legacy = meta.startedAt === undefined;
  return fence.predatesPurge(meta.startedAt ?? meta.storedAt, source, meta.tags, legacy ? legacyWindowMs : undefined);
}

/** Whether an entry's work certainly began before a purge covering it (by the clocks alone, no window). */
export function fencePredates(fence: PurgeFence, meta: EntryMeta, source = meta.sourceUrl): boolean {
  return fence.predatesPurge(meta.startedAt ?? meta.storedAt, source, meta.tags, 0);
}

/**
 * A covered entry read from the store is a miss, and is deleted in the background when it certainly predates the
 * purge (one begun within the window may be another instance's fresh copy in a shared store); a covered entry is
 * never written to it (a load that began before the purge and ended after it); until the fence is `ready`, and for
 * entries begun before the fence's `horizonMs`, every read is a miss. Deletes, prefix deletes and listings pass
 * through.
 */
export function fenceStore(store: Store, fence: PurgeFence, options: FencedStoreOptions): Store {
  const now = options.now ?? Date.now;
  const beforeHorizon = (meta: EntryMeta) =>
    options.horizonMs !== undefined && (meta.startedAt ?? meta.storedAt) < now() - options.horizonMs;
  const refuse = (key: string, meta: EntryMeta | undefined): boolean => {
    if (!meta) return false;
    if (!options.ready() || beforeHorizon(meta)) return true;
    if (!fenceCovers(fence, meta, options.legacyWindowMs)) return false;
    fence.fenced('read');
    if (fencePredates(fence, meta)) options.defer(store.delete(key).catch(() => {}));
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
      if (fenceCovers(fence, entry.meta, options.legacyWindowMs)) {
        fence.fenced('write');
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
