/**
 * The Cache API (`caches.default` on Workers) as a Store: one synthetic URL per store key,
 * `https://imgrelay.internal/<store key>`, so the variant (options + output-format bucket, DESIGN.md "Edge") is in
 * the URL itself and `Vary` is never relied on. The entry's meta travels in a response header; the response also
 * carries `Cache-Tag` (the entry's purge tags) so a zone purge by tag can reach it.
 *
 * Limits of the Cache API, and what this store does about them:
 * - it cannot be enumerated: `list` yields nothing and `deletePrefix` removes nothing (returns 0); entries leave by
 *   their TTL, by `delete` of an exact key, or by a Cloudflare purge (by tag, or everything). The edge makes purged
 *   entries unreachable by checking every read against the purge fence instead (fenced-store.ts, edge-purge.ts);
 * - it is per data centre, and writes have no effect on a `*.workers.dev` host (a custom domain is needed);
 * - it takes no AbortSignal: the signal is checked before each call (the guard's deadline bounds the wait).
 * Entries are kept past their freshness for STALE_GRACE_S, so the tiered cache can still serve them stale while it
 * revalidates (stale-while-revalidate / stale-if-error); the tiered cache, not the Cache API, decides freshness.
 */
import type { EntryMeta, Store, StoredEntry } from './types.js';
import { isEntryMeta } from './entry-codec.js';

/** The part of the Workers `Cache` this store uses (structural, so it type-checks without Workers types). */
export interface CacheLike {
  match(request: Request): Promise<Response | undefined>;
  put(request: Request, response: Response): Promise<void>;
  delete(request: Request): Promise<boolean>;
}

export interface CacheApiStoreOptions {
  now?: () => number;
  /** Seconds an entry is kept after it expires (for serving stale); default 7 days, like stale-if-error. */
  staleGraceS?: number;
  /**
   * Longest an entry is kept at all. The edge sets it when it follows the purge log: an entry must not outlive
   * the log entries of the purges that can cover it (src/edge-purge.ts).
   */
  maxTtlS?: number;
}

/** Never fetched and never resolved: only a namespace for cache keys. `.internal` is refused as a source host. */
export const CACHE_KEY_BASE = 'https://imgrelay.internal/';
export const META_HEADER = 'x-imgrelay-meta';
/** Entries whose meta header would be larger are not cached here (a header this big risks being refused). */
export const MAX_META_HEADER_BYTES = 16 * 1024;
const STALE_GRACE_S = 7 * 86_400;

export function cacheApiUrl(key: string): string {
  return `${CACHE_KEY_BASE}${key}`;
}

export function createCacheApiStore(cache: CacheLike, options: CacheApiStoreOptions = {}): Store {
  return new CacheApiStore(cache, options);
}

class CacheApiStore implements Store {
  readonly kind = 'cache-api';
  private readonly now: () => number;
  private readonly staleGraceS: number;
  private readonly maxTtlS: number;

  constructor(private readonly cache: CacheLike, options: CacheApiStoreOptions) {
    this.now = options.now ?? Date.now;
    this.staleGraceS = options.staleGraceS ?? STALE_GRACE_S;
    this.maxTtlS = options.maxTtlS ?? Number.POSITIVE_INFINITY;
  }

  async get(key: string, signal?: AbortSignal): Promise<StoredEntry | undefined> {
    signal?.throwIfAborted();
    const response = await this.cache.match(new Request(cacheApiUrl(key)));
    if (!response) return undefined;
    const meta = readMeta(response);
    if (!meta) {
      await response.body?.cancel();
      return undefined;
    }
    const body = new Uint8Array(await response.arrayBuffer());
    // A torn or foreign entry is a miss, never served.
    return body.byteLength === meta.size ? { body, meta } : undefined;
  }

  async head(key: string, signal?: AbortSignal): Promise<EntryMeta | undefined> {
    signal?.throwIfAborted();
    const response = await this.cache.match(new Request(cacheApiUrl(key)));
    await response?.body?.cancel();
    return response ? readMeta(response) : undefined;
  }

  async put(key: string, entry: StoredEntry, signal?: AbortSignal): Promise<void> {
    signal?.throwIfAborted();
    const meta = encodeMeta({ ...entry.meta, size: entry.body.byteLength });
    if (meta.length > MAX_META_HEADER_BYTES) return;
    const ttlS = Math.min(this.maxTtlS,
      Math.max(0, Math.ceil((entry.meta.expiresAt - this.now()) / 1000)) + this.staleGraceS);
    const headers: Record<string, string> = {
      'content-type': 'application/octet-stream',
      'content-length': String(entry.body.byteLength),
      'cache-control': `public, max-age=${ttlS}`,
      [META_HEADER]: meta,
    };
    if (entry.meta.tags.length > 0) headers['cache-tag'] = entry.meta.tags.join(',');
    await this.cache.put(new Request(cacheApiUrl(key)), new Response(entry.body as Uint8Array<ArrayBuffer>, { headers }));
  }

  async delete(key: string, signal?: AbortSignal): Promise<boolean> {
    signal?.throwIfAborted();
    return this.cache.delete(new Request(cacheApiUrl(key)));
  }

  /** The Cache API cannot be enumerated: nothing to remove by prefix here (see the module comment). */
  async deletePrefix(_prefix: string, signal?: AbortSignal): Promise<number> {
    signal?.throwIfAborted();
    return 0;
  }

  /** The Cache API cannot be enumerated: an empty listing. */
  async *list(_prefix: string, signal?: AbortSignal): AsyncIterable<string> {
    signal?.throwIfAborted();
  }
}

/**
 * JSON with every non-ASCII character escaped (`\uXXXX`): header values must be bytes, and URLs and tags are ASCII
 * anyway, so the escape costs nothing in practice and cannot corrupt anything.
 */
function encodeMeta(meta: EntryMeta): string {
  return JSON.stringify(meta).replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

function readMeta(response: Response): EntryMeta | undefined {
  const raw = response.headers.get(META_HEADER);
  if (!raw) return undefined;
  try {
    const meta = JSON.parse(raw) as EntryMeta;
    return isEntryMeta(meta) ? meta : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Two stores read front first (the Cache API: fast, per data centre) then back (R2: persistent, global); a back hit
 * is copied to the front in the background. Writes and deletes reach both. Only the back store can be enumerated,
 * so `list` and `deletePrefix` count what the back store holds. Each layer should be guarded on its own
 * (store-guard.ts), so one failing layer is a miss for it alone.
 */
export function layerStores(front: Store, back: Store, defer: (work: Promise<unknown>) => void): Store {
  return {
    kind: `${front.kind}+${back.kind}`,
    async get(key, signal) {
      const hit = await front.get(key, signal);
      if (hit) return hit;
      const stored = await back.get(key, signal);
      if (stored) defer(front.put(key, stored).catch(() => {}));
      return stored;
    },
    async head(key, signal) {
      return (await front.head?.(key, signal)) ?? back.head?.(key, signal);
    },
    async put(key, entry, signal) {
      await Promise.all([front.put(key, entry, signal), back.put(key, entry, signal)]);
    },
    async delete(key, signal) {
      const [inFront, inBack] = await Promise.all([front.delete(key, signal), back.delete(key, signal)]);
      return inFront || inBack;
    },
    async deletePrefix(prefix, signal) {
      const [inFront, inBack] = await Promise.all([front.deletePrefix(prefix, signal), back.deletePrefix(prefix, signal)]);
      return inFront + inBack;
    },
    list: (prefix, signal) => back.list(prefix, signal),
    close: async () => {
      await Promise.all([front.close?.(), back.close?.()]);
    },
  };
}
