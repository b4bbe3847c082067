/**
 * The purge index: tiny marker objects that let a purge by host, URL prefix or tag find its sources without
 * walking the store (issue #15 item 2). DESIGN.md's entry layout stays as it is (`<source hash>/source`,
 * `<source hash>/<variant hash>`); beside it, each source has
 *
 *   `_index/host/<hostname>/<port or _>/<source hash>`   one per source (`_`: the scheme's default port)
 *   `_index/tag/<tag>/<source hash>`                     one per tag that cannot be derived (none today)
 *
 * Tags that can be derived need no marker: `src-<24 hex>` is the start of the source hash itself (a store prefix),
 * `host-<hostname>` is the host marker. A segment that is not a plain name (IPv6 literal, long or odd tag) is
 * `_<sha256>`. Markers are empty entry frames whose meta carries the source URL, so a prefix purge reads the
 * marker's meta (one ranged read) to compare the full URL.
 *
 * `withStoreIndex` writes the markers with the entry they describe (inside the same write-behind job), so an
 * entry written by this version is never unfindable: a failed marker write fails the entry's write too (and an
 * entry that landed anyway is deleted again). Purges
 * delete the entries first and the markers last; a marker left behind (entry evicted, or purged by a selector that
 * did not list that marker) only costs a later purge one empty prefix delete, after which it is removed too.
 */
import { LRUCache } from 'lru-cache';
import { isEntryKey } from './entry-codec.js';
import { sha256Hex } from './keys.js';
import type { EntryMeta, Store, StoredEntry } from './types.js';

export const INDEX_PREFIX = '_index/';
const HOST_INDEX = `${INDEX_PREFIX}host/`;
const TAG_INDEX = `${INDEX_PREFIX}tag/`;
/** Where the markers live (purge `all` empties these; `_index/done/…`, reindex.ts, stays). */
export const MARKER_PREFIXES: readonly string[] = [HOST_INDEX, TAG_INDEX];
/** Kept verbatim in a key segment; anything else is hashed (see entry-codec INDEX_KEY). */
const PLAIN_SEGMENT = /^[A-Za-z0-9-][A-Za-z0-9._-]{0,99}$/;
const DEFAULT_PORT = '_';
/** The source surrogate key (images.ts surrogateKeys): the first 24 hex digits of the source hash. */
const SOURCE_TAG = /^src-([0-9a-f]{24})$/;
const MARKER_TYPE = 'application/vnd.imgrelay.index-marker';
/**
 * Sources whose markers this process wrote recently: a variant stored right after its source needs no second
 * marker PUT. A source entry always (re)writes its markers, so a marker removed by another instance's purge comes
 * back with the next fetch of that source.
 */
const RECENT_MARKS = 50_000;
const RECENT_MARK_TTL_MS = 10 * 60_000;

async function segment(text: string): Promise<string> {
  return PLAIN_SEGMENT.test(text) ? text : `_${await sha256Hex(text)}`;
}

/** `_index/host/<hostname>/` (every port) or, with `port` ('' = default), `_index/host/<hostname>/<port>/`. */
export async function hostIndexPrefix(hostname: string, port?: string): Promise<string> {
  const base = `${HOST_INDEX}${await segment(hostname.toLowerCase())}/`;
  return port === undefined ? base : `${base}${port === '' ? DEFAULT_PORT : port}/`;
}

async function tagIndexPrefix(tag: string): Promise<string> {
  return `${TAG_INDEX}${await segment(tag)}/`;
}

/** The source hash a marker points to (its last segment) as a store prefix: `<hash>/`. */
export const markedDir = (marker: string) => `${marker.slice(-64)}/`;

/** How a tag is found: a store prefix (`src-…`), a host's markers (`host-…`) or the tag's own markers. */
export async function tagLookupPrefix(tag: string): Promise<{ entries?: string; markers?: string }> {
  const source = SOURCE_TAG.exec(tag);
  if (source) return { entries: source[1] };
  if (tag.startsWith('host-')) return { markers: await hostIndexPrefix(tag.slice('host-'.length)) };
  return { markers: await tagIndexPrefix(tag) };
}

/** Marker keys of one source: its host's, plus one per tag that cannot be derived from the hash or the host. */
export async function markerKeys(sourceHash: string, meta: Pick<EntryMeta, 'sourceUrl' | 'tags'>): Promise<string[]> {
  const url = URL.canParse(meta.sourceUrl) ? new URL(meta.sourceUrl) : undefined;
  // Not an image source (the purge log's `imgrelay:…` entries): nothing a host purge could name.
  if (!url || !/^https?:$/.test(url.protocol) || url.hostname === '') return [];
  const keys = [`${await hostIndexPrefix(url.hostname, url.port)}${sourceHash}`];
  for (const tag of meta.tags) {
    if (SOURCE_TAG.test(tag) || tag === `host-${url.hostname}`) continue;
    keys.push(`${await tagIndexPrefix(tag)}${sourceHash}`);
  }
  return keys;
}

export function markerEntry(sourceUrl: string, now: number): StoredEntry {
  return {
    body: new Uint8Array(0),
    meta: { contentType: MARKER_TYPE, etag: '"index-marker"', storedAt: now, expiresAt: now, sourceUrl, size: 0,
      tags: [] },
  };
}

export interface IndexedStore extends Store {
  /** Writes the markers of the source `sourceHash` (whose entry has `meta`); used by `imgrelay reindex`. */
  mark(sourceHash: string, meta: Pick<EntryMeta, 'sourceUrl' | 'tags'>, signal?: AbortSignal): Promise<void>;
}

/** `store` with markers written beside every entry it is given (see the header). */
export function withStoreIndex(store: Store, now: () => number = Date.now): IndexedStore {
  const recent = new LRUCache<string, true>({ max: RECENT_MARKS, ttl: RECENT_MARK_TTL_MS });
  const mark = async (hash: string, meta: Pick<EntryMeta, 'sourceUrl' | 'tags'>, signal?: AbortSignal) => {
    const keys = await markerKeys(hash, meta);
    await Promise.all(keys.map((key) => store.put(key, markerEntry(meta.sourceUrl, now()), signal)));
    recent.set(hash, true);
  };
  return {
    kind: store.kind,
    get foreignSkipped() { return store.foreignSkipped; },
    get: (key, signal) => store.get(key, signal),
    head: store.head && ((key, signal) => store.head!(key, signal)),
    async put(key, entry, signal) {
      const hash = key.slice(0, 64);
      if (!isEntryKey(key) || (!key.endsWith('/source') && recent.has(hash))) return store.put(key, entry, signal);
      // Marker and entry in parallel (one round trip, not two, inside the store deadline); an entry that landed
      // while its marker did not is taken back, so no entry stays that a host purge could not find.
      const [marked, stored] = await Promise.allSettled([mark(hash, entry.meta, signal), store.put(key, entry, signal)]);
      if (marked.status === 'rejected') {
        if (stored.status === 'fulfilled') await store.delete(key).catch(() => undefined);
        throw marked.reason;
      }
      if (stored.status === 'rejected') throw stored.reason;
    },
    delete: (key, signal) => store.delete(key, signal),
    async deletePrefix(prefix, signal) {
      // Whatever this purges must get its markers again when stored again.
      if (!prefix.startsWith('_')) recent.clear();
      return store.deletePrefix(prefix, signal);
    },
    list: (prefix, signal) => store.list(prefix, signal),
    close: store.close && (() => store.close!()),
    mark,
  };
}
