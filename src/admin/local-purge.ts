/**
 * Removing what selectors match from this instance's tiers: the memory tier (positive and negative entries) and
 * the persistent store. Store layout (DESIGN.md "Cache"): every variant of a source lives under
 * `<sha256(source)>/`, so a source goes with one `deletePrefix`; hosts, prefixes and tags need the entries'
 * metadata, read once per source directory while walking the store.
 */
import pLimit from 'p-limit';
import { sha256Hex } from '../cache/keys.js';
import type { MemoryTier } from '../cache/memory.js';
import type { GuardedStore } from '../cache/store-guard.js';
import type { EntryMeta, Store } from '../cache/types.js';
import { surrogateKeys } from '../images.js';
import { type Matcher, type Selectors, matcherFor, needsTags } from './selectors.js';

const NO_TAGS: readonly string[] = Object.freeze([]);
/** Every entry key starts with a hex digit (`_purge/…` does not): 16 prefix deletes clear the cache, not the log. */
const HEX_DIGITS = [...'0123456789abcdef'];
const STORE_CONCURRENCY = 8;

export interface PurgeableStore {
  guarded: GuardedStore;
  /** The unguarded store, to know whether it can read metadata alone (`head`). */
  raw: Store;
  /** This instance's write-behind queue: drained first, so no old entry lands after the purge. */
  writes?: { drain(deadlineMs: number): Promise<void> };
}

/** How long a purge waits for this instance's queued store writes before purging the store anyway. */
const DRAIN_MS = 5000;

export interface StorePurgeResult {
  removed: number;
  /** Store calls that failed or were skipped by the breaker while purging: entries may remain (purge again). */
  failures: number;
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
  await store.writes?.drain(DRAIN_MS);
  const failuresBefore = guarded.errors + guarded.skipped;
  const limit = pLimit(STORE_CONCURRENCY);
  const deleteDir = (prefix: string) => limit(() => guarded.deletePrefix(prefix));
  let dirs: string[];
  if (selectors.all) dirs = HEX_DIGITS;
  else {
    dirs = await Promise.all(selectors.sources.map(async (source) => `${await sha256Hex(source)}/`));
    const byMeta = selectors.hosts.length + selectors.prefixes.length + selectors.tags.length > 0;
    if (byMeta) dirs.push(...await matchingDirs(store, matcherFor(selectors)));
  }
  const counts = await Promise.all([...new Set(dirs)].map(deleteDir));
  return { removed: counts.reduce((a, b) => a + b, 0), failures: guarded.errors + guarded.skipped - failuresBefore };
}

/**
 * Walks the store's keys and returns the `<source hash>/` directories whose entries match. Keys arrive sorted
 * (both stores list lexicographically), so one directory's keys are contiguous: the first readable entry decides
 * for the whole directory (every variant carries its source's URL and tags).
 */
async function matchingDirs(store: PurgeableStore, matches: Matcher): Promise<string[]> {
  const readMeta = metaReader(store);
  const found: string[] = [];
  let current = '';
  let decided = false;
  for await (const key of store.guarded.list('')) {
    if (key.startsWith('_purge/')) continue;
    const dir = key.slice(0, key.indexOf('/') + 1);
    if (dir !== current) {
      current = dir;
      decided = false;
    }
    if (decided) continue;
    const meta = await readMeta(key);
    if (!meta) continue; // gone meanwhile or unreadable: the directory's next key decides
    decided = true;
    if (matches(meta.sourceUrl, meta.tags)) found.push(dir);
  }
  return found;
}

/** Metadata alone when the store can (`head`: a ranged read on S3), else the whole entry. */
function metaReader(store: PurgeableStore): (key: string) => Promise<EntryMeta | undefined> {
  const head = store.guarded.head?.bind(store.guarded);
  if (store.raw.head && head) return (key) => head(key);
  return async (key) => (await store.guarded.get(key))?.meta;
}
