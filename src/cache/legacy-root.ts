/**
 * Reading (and purging) entries that versions before the default `imgrelay/` prefix wrote at the bucket root.
 *
 * `current` is the store under the prefix, `legacy` the same bucket at its root. Entries are read from `current`
 * and, on a miss, from `legacy` (one extra GET per miss); writes go to `current` only, so an old entry migrates
 * when it is next revalidated or rebuilt. Deleting an entry or an entry prefix (`<hash>/`, a hex start for purge
 * by `all` or by `src-` tag) removes it under both; the legacy side only ever sees entry keys (`<64 hex>/…`), never
 * the purge log or the index, and its listing skips every other object at the root. Turn this off
 * (IMGRELAY_S3_LEGACY_ROOT=false) once the old entries are gone.
 */
import { isEntryKey } from './entry-codec.js';
import type { Store } from './types.js';

/** Prefixes that can select entry keys: '' or hex digits (an entry key starts with its 64-hex source hash). */
const ENTRY_PREFIX = /^[0-9a-f]{0,64}(\/.*)?$/;
const HEX_DIGITS = [...'0123456789abcdef'];

/** `release` runs on close, after both stores closed (e.g. destroys the S3 client they share). */
export function withLegacyRoot(current: Store, legacy: Store, release?: () => void): Store {
  const reachesLegacy = (prefix: string) => ENTRY_PREFIX.test(prefix);
  return {
    kind: current.kind,
    get foreignSkipped() { return (current.foreignSkipped ?? 0) + (legacy.foreignSkipped ?? 0); },
    async get(key, signal) {
      const entry = await current.get(key, signal);
      return entry ?? (isEntryKey(key) ? legacy.get(key, signal) : undefined);
    },
    head: current.head && legacy.head && (async (key, signal) => {
      const meta = await current.head!(key, signal);
      return meta ?? (isEntryKey(key) ? legacy.head!(key, signal) : undefined);
    }),
    put: (key, entry, signal) => current.put(key, entry, signal),
    async delete(key, signal) {
      const [now, old] = await Promise.all([current.delete(key, signal),
        isEntryKey(key) ? legacy.delete(key, signal) : false]);
      return now || old;
    },
    async deletePrefix(prefix, signal) {
      const [now, old] = await Promise.all([current.deletePrefix(prefix, signal),
        reachesLegacy(prefix) ? legacy.deletePrefix(prefix, signal) : 0]);
      return now + old;
    },
    async *list(prefix, signal) {
      yield* current.list(prefix, signal);
      if (!reachesLegacy(prefix)) return;
      // The whole root by its 16 hex starts, not '': the prefix's own objects are not foreign to be counted.
      for (const start of prefix === '' ? HEX_DIGITS : [prefix]) {
        for await (const key of legacy.list(start, signal)) if (isEntryKey(key)) yield key;
      }
    },
    close: async () => {
      await Promise.all([current.close?.(), legacy.close?.()]);
      release?.();
    },
  };
}
