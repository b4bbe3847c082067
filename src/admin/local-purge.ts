/**
 * Removing what selectors match from this instance's tiers: the memory tier (positive and negative entries) and
 * the persistent store. Store layout (DESIGN.md "Cache"): every variant of a source lives under
 * `<sha256(source)>/`, so a source goes with one `deletePrefix`; hosts, prefixes and tags are answered by the
 * purge index (src/cache/store-index.ts, index-lookup.ts), never by walking the store. Stores only ever list and
 * delete imgrelay keys under their own prefix: anything else in the bucket is skipped and counted.
 */
import pLimit from 'p-limit';
import { sha256Hex } from '../cache/keys.js';
import { findIndexed } from '../cache/index-lookup.js';
import type { MemoryTier } from '../cache/memory.js';
import type { GuardedStore } from '../cache/store-guard.js';
import { MARKER_PREFIXES } from '../cache/store-index.js';
import type { EntryMeta, Store } from '../cache/types.js';
import { surrogateKeys } from '../images.js';
import { type Selectors, matcherFor, needsTags } from './selectors.js';

const NO_TAGS: readonly string[] = Object.freeze([]);
/**
 * Every entry key starts with a hex digit (`_purge/…`, `_index/…` do not): 16 prefix deletes clear the cache, not
 * the log. Stores delete only imgrelay keys under their own prefix, so a foreign `0readme.txt` stays.
 */
const HEX_DIGITS = [...'0123456789abcdef'];
const STORE_CONCURRENCY = 8;

export interface PurgeableStore {
  guarded: GuardedStore;
  /** The unguarded store, to know whether it can read metadata alone (`head`). */
  raw: Store;
  /**
   * This instance's write-behind queue: the writes in flight when the purge starts are waited for, so no old entry
   * lands after it; queued ones are refused by the fence as they start (write-behind.ts `admit`).
   */
  writes?: { settle(deadlineMs: number): Promise<void> };
}

/** How long a purge waits for this instance's store writes in flight before purging the store anyway. */
const SETTLE_MS = 5000;

export interface StorePurgeResult {
  removed: number;
  /** Store calls that failed or were skipped by the breaker while purging: entries may remain (purge again). */
  failures: number;
  /** Objects under the store's prefix that are not imgrelay keys, met and left alone (never an error). */
  skipped: number;
}

/** Removes matching memory entries; returns how many went. */
export async function purgeMemory(memory: MemoryTier, selectors: Selectors): Promise<number> {
  if (selectors.all) return memory.clear();
  const matches = matcherFor(selectors);
  if (!needsTags(selectors)) return memory.deleteWhere((source) => matches(source, NO_TAGS));
  // Positive entries carry their tags; remembered failures have none, so their sources' keys are computed first.
  const bare = new Set<string>();
  memory.deleteWhere((source, entry) => {
    if (!entry) bare.add(source);
    return false;
  });
  const tagsOf = new Map<string, readonly string[]>();
  for (const source of bare) tagsOf.set(source, await tagsOfSource(source));
  return memory.deleteWhere((source, entry) => matches(source, entry?.meta.tags ?? tagsOf.get(source) ?? NO_TAGS));
}

async function tagsOfSource(source: string): Promise<readonly string[]> {
  try {
    return await surrogateKeys(new URL(source));
  } catch {
    return NO_TAGS;
  }
}

/** Removes matching entries (every variant of each matching source) from the store. */
export async function purgeStore(store: PurgeableStore, selectors: Selectors): Promise<StorePurgeResult> {
  const { guarded } = store;
  await store.writes?.settle(SETTLE_MS);
  const failuresBefore = guarded.errors + guarded.skipped;
  const foreignBefore = store.raw.foreignSkipped ?? 0;
  const limit = pLimit(STORE_CONCURRENCY);
  const deleteDir = (prefix: string) => limit(() => guarded.deletePrefix(prefix));
  let removed: number;
  if (selectors.all) {
    removed = sum(await Promise.all(HEX_DIGITS.map(deleteDir)));
    // Markers last: no entry is ever left without its marker.
    await Promise.all(MARKER_PREFIXES.map((prefix) => guarded.deletePrefix(prefix)));
  } else {
    const found = await dirsOf(store, selectors);
    removed = sum(await Promise.all([...found.dirs].map(deleteDir)));
    await Promise.all([...found.markers].map((marker) => limit(() => guarded.delete(marker))));
  }
  return resultSince(store, failuresBefore, foreignBefore, removed);
}

/**
 * A settle pass's store sweep: of the matching entries, only those `predates` says may hold bytes from before the
 * purge go (their work began before it, or so shortly after that every reader refuses them anyway); entries
 * written since by work that began after it stay, so every instance does not fetch the source again for nothing.
 * Entries whose meta cannot be read go too. Markers stay (kept entries need theirs; a stale one costs one lookup).
 * A purge of everything deletes everything again: reading every entry's meta would walk the whole store.
 */
export async function settleStore(store: PurgeableStore, selectors: Selectors, predates: (meta: EntryMeta) => boolean)
  : Promise<StorePurgeResult> {
  if (selectors.all) return purgeStore(store, selectors);
  const { guarded } = store;
  const failuresBefore = guarded.errors + guarded.skipped;
  const foreignBefore = store.raw.foreignSkipped ?? 0;
  const limit = pLimit(STORE_CONCURRENCY);
  const readMeta = metaReader(store);
  const sweepKey = async (key: string) => {
    const meta = await readMeta(key);
    return (!meta || predates(meta)) && await guarded.delete(key) ? 1 : 0;
  };
  const sweepDir = async (dir: string) => {
    const keys: string[] = [];
    for await (const key of guarded.list(dir)) keys.push(key);
    return sum(await Promise.all(keys.map((key) => limit(() => sweepKey(key)))));
  };
  const removed = sum(await Promise.all([...(await dirsOf(store, selectors)).dirs].map(sweepDir)));
  return resultSince(store, failuresBefore, foreignBefore, removed);
}

/** The store directories (one per source) the selectors match, and the index markers that led there. */
async function dirsOf(store: PurgeableStore, selectors: Selectors) {
  const found = await findIndexed(store.guarded, selectors, metaReader(store));
  for (const source of selectors.sources) found.dirs.add(`${await sha256Hex(source)}/`);
  return found;
}

function resultSince(store: PurgeableStore, failuresBefore: number, foreignBefore: number, removed: number)
  : StorePurgeResult {
  const { guarded } = store;
  return { removed, failures: guarded.errors + guarded.skipped - failuresBefore,
    skipped: (store.raw.foreignSkipped ?? 0) - foreignBefore };
}

const sum = (counts: number[]) => counts.reduce((a, b) => a + b, 0);

/** Metadata alone when the store can (`head`: a ranged read on S3), else the whole entry. */
function metaReader(store: PurgeableStore): (key: string) => Promise<EntryMeta | undefined> {
  const head = store.guarded.head?.bind(store.guarded);
  if (store.raw.head && head) return (key) => head(key);
  return async (key) => (await store.guarded.get(key))?.meta;
}
