/**
 * Reading (and purging) entries that versions before the default `imgrelay/` prefix wrote at the bucket root.
 *
 * `current` is the store under the prefix, `legacy` the same bucket at its root. Entries are read from `current`
 * and, on a miss, from `legacy` (one extra GET per miss); writes go to `current` only, so an old entry migrates
 * when it is next revalidated or rebuilt. Deleting an entry or an entry prefix (`<hash>/`, a hex start for purge
 * by `all` or by `src-` tag) removes it under both; the legacy side only ever sees entry keys (`<64 hex>/…`), never
 * the purge log or the index, and its listing skips every other object at the root.
 *
 * `probe` (run once at start-up on Node) looks for any entry at the root and, finding none, switches the root off
 * for this process: a bucket that never held old entries pays nothing per miss. IMGRELAY_S3_LEGACY_ROOT=false
 * switches it off from the start.
 */
import { isEntryKey } from './entry-codec.js';
import type { Store } from './types.js';

/** Prefixes that can select entry keys: '' or hex digits (an entry key starts with its 64-hex source hash). */
const ENTRY_PREFIX = /^[0-9a-f]{0,64}(\/.*)?$/;
const HEX_DIGITS = [...'0123456789abcdef'];

export interface LegacyRootStore extends Store {
  /** Whether the root still holds an entry; when it does not, the root is no longer consulted. */
  probe(signal?: AbortSignal): Promise<boolean>;
}

/** `release` runs on close, after both stores closed (e.g. destroys the S3 client they share). */
export function withLegacyRoot(current: Store, legacy: Store, release?: () => void): LegacyRootStore {
  let active = true;
  const reachesLegacy = (prefix: string) => active && ENTRY_PREFIX.test(prefix);
  const legacyEntry = (key: string) => active && isEntryKey(key);
  /** Entry keys at the root under `prefix` ('' = the whole root by its 16 hex starts: never the prefix's objects). */
  async function* legacyKeys(prefix: string, signal?: AbortSignal): AsyncGenerator<string> {
    for (const start of prefix === '' ? HEX_DIGITS : [prefix]) {
      for await (const key of legacy.list(start, signal)) if (isEntryKey(key)) yield key;
    }
  }
  return {
    kind: current.kind,
    get foreignSkipped() { return (current.foreignSkipped ?? 0) + (legacy.foreignSkipped ?? 0); },
    async get(key, signal) {
      const entry = await current.get(key, signal);
      return entry ?? (legacyEntry(key) ? legacy.get(key, signal) : undefined);
    },
    head: current.head && legacy.head && (async (key, signal) => {
      const meta = await current.head!(key, signal);
      return meta ?? (legacyEntry(key) ? legacy.head!(key, signal) : undefined);
    }),
    put: (key, entry, signal) => current.put(key, entry, signal),
    async delete(key, signal) {
      const [now, old] = await Promise.all([current.delete(key, signal),
        legacyEntry(key) ? legacy.delete(key, signal) : false]);
      return now || old;
    },
    async deletePrefix(prefix, signal) {
      const [now, old] = await Promise.all([current.deletePrefix(prefix, signal),
        reachesLegacy(prefix) ? legacy.deletePrefix(prefix, signal) : 0]);
      return now + old;
    },
    async *list(prefix, signal) {
      yield* current.list(prefix, signal);
      if (reachesLegacy(prefix)) yield* legacyKeys(prefix, signal);
    },
    async probe(signal) {
      for await (const key of legacyKeys('', signal)) if (key) return true; // the first one is enough
      active = false;
      return false;
    },
    close: async () => {
      await Promise.all([current.close?.(), legacy.close?.()]);
      release?.();
    },
  };
}
