/**
 * Answers "which sources does this purge cover?" from the purge index (store-index.ts) instead of walking the
 * store: a host is one marker listing, a URL prefix is its host's (and port's) markers whose source URL starts
 * with it (one ranged read per marker of that host), a tag is a store prefix, a host's markers or its own markers.
 * Nothing outside those listings is read.
 */
import pLimit from 'p-limit';
import { isIndexKey } from './entry-codec.js';
import { hostIndexPrefix, markedDir, tagLookupPrefix } from './store-index.js';
import type { EntryMeta, Store } from './types.js';

export interface IndexQuery {
  /** Lower-case `host` or `host:port` (IPv6 in brackets). */
  hosts: readonly string[];
  /** Canonical source URL prefixes (`http://host[:port]/…`). */
  prefixes: readonly string[];
  tags: readonly string[];
}

export interface IndexAnswer {
  /** Store prefixes to delete: `<source hash>/`, or a shorter hash prefix for a `src-…` tag. */
  dirs: Set<string>;
  /** The markers that led there: deleted once their entries are gone. */
  markers: Set<string>;
}

const READ_CONCURRENCY = 8;

/** `host` or `host:port` → hostname and port ('' is the scheme's default; undefined: every port). */
export function splitHost(host: string): { hostname: string; port?: string } {
  const match = /^(\[[^\]]*\]|[^:]*)(?::(\d+))?$/.exec(host);
  return match ? { hostname: match[1], port: match[2] } : { hostname: host };
}

export type MetaReader = (key: string) => Promise<EntryMeta | undefined>;

/** `readMeta` reads a marker's meta (defaults to `head`, else `get`: a guarded store always has `head`). */
export async function findIndexed(
  store: Store, query: IndexQuery, readMeta: MetaReader = metaReader(store),
): Promise<IndexAnswer> {
  const answer: IndexAnswer = { dirs: new Set(), markers: new Set() };
  const collect = async (prefix: string) => {
    for await (const marker of store.list(prefix)) {
      if (!isIndexKey(marker)) continue;
      answer.dirs.add(markedDir(marker));
      answer.markers.add(marker);
    }
  };
  for (const host of query.hosts) {
    const { hostname, port } = splitHost(host);
    await collect(await hostIndexPrefix(hostname, port));
  }
  for (const tag of query.tags) {
    const lookup = await tagLookupPrefix(tag);
    if (lookup.entries) answer.dirs.add(lookup.entries);
    if (lookup.markers) await collect(lookup.markers);
  }
  for (const prefix of query.prefixes) await collectPrefix(store, prefix, readMeta, answer);
  return answer;
}

/** Markers of the prefix's host and port whose source URL starts with the prefix. */
async function collectPrefix(store: Store, prefix: string, readMeta: MetaReader, answer: IndexAnswer): Promise<void> {
  const url = new URL(prefix);
  const limit = pLimit(READ_CONCURRENCY);
  const reads: Array<Promise<void>> = [];
  for await (const marker of store.list(await hostIndexPrefix(url.hostname, url.port))) {
    if (!isIndexKey(marker)) continue;
    reads.push(limit(async () => {
      const meta = await readMeta(marker);
      if (!meta?.sourceUrl.startsWith(prefix)) return;
      answer.dirs.add(markedDir(marker));
      answer.markers.add(marker);
    }));
  }
  await Promise.all(reads);
}

function metaReader(store: Store): MetaReader {
  if (store.head) return (key) => store.head!(key);
  return async (key) => (await store.get(key))?.meta;
}
