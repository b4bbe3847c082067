/** The persistent tier's contract: one interface, several stores (directory, S3, R2, none). */
import type { Validators } from '../fetch/types.js';

/** What is kept beside every cached body (sources and variants alike). */
export interface EntryMeta {
  contentType: string;
  /** Our strong ETag of the body, quoted. */
  etag: string;
  /** When the bytes were produced (ms since epoch); sent as Last-Modified. */
  storedAt: number;
  /**
   * When the work that produced this entry began (ms since epoch, the writing instance's clock): a purge after it
   * fences the entry (purge-fence.ts), even when its store write lands late. Absent in entries of older versions.
   */
  startedAt?: number;
  /** Freshness end (ms since epoch), from the upstream's caching headers, clamped. */
  expiresAt: number;
  /** The freshness lifetime last granted (ms); reused when a 304 carries no caching headers of its own. */
  ttlMs?: number;
  /** Canonical source URL these bytes come from. */
  sourceUrl: string;
  /** Upstream validators, for conditional revalidation of the source. */
  validators?: Validators;
  /** Body length in bytes. */
  size: number;
  /** Purge tags (surrogate keys) of the entry. */
  tags: string[];
  /** True when the output format was chosen from Accept (the response carries Vary: Accept). */
  varyAccept?: boolean;
  /** For variants: the ETag of the source they were built from (a changed source invalidates them). */
  sourceEtag?: string;
}

export interface StoredEntry {
  body: Uint8Array;
  meta: EntryMeta;
}

/**
 * Keys look like `<64 hex source hash>/source` or `<64 hex source hash>/<64 hex variant hash>`;
 * a store may add its own prefix. Every call takes an optional AbortSignal; implementations must honour it.
 * Stores may throw on failure; the tiered cache turns every store failure into a miss.
 */
export interface Store {
  readonly kind: string;
  get(key: string, signal?: AbortSignal): Promise<StoredEntry | undefined>;
  /** Atomic: a reader never sees a half-written entry. */
  put(key: string, entry: StoredEntry, signal?: AbortSignal): Promise<void>;
  delete(key: string, signal?: AbortSignal): Promise<boolean>;
  /** Removes every key starting with `prefix`; returns how many were removed. */
  deletePrefix(prefix: string, signal?: AbortSignal): Promise<number>;
  /** Keys starting with `prefix` (all keys for ''). */
  list(prefix: string, signal?: AbortSignal): AsyncIterable<string>;
  /** Reads only the metadata (for purge by host/tag); undefined when absent. */
  head?(key: string, signal?: AbortSignal): Promise<EntryMeta | undefined>;
  close?(): Promise<void>;
  /**
   * Objects under the store's prefix that are not imgrelay keys (a console "folder" marker, other data), seen and
   * left alone by `list`/`deletePrefix` since start-up; stores that cannot meet any leave it undefined.
   */
  readonly foreignSkipped?: number;
}
