/**
 * The memory tier: an LRU bounded by body bytes (IMGRELAY_MEMORY_CACHE_MB) with a per-entry cap, plus a small
 * negative cache (404s, undecodable sources) that lives in memory only and only briefly. Portable.
 */
import { LRUCache } from 'lru-cache';
import { RelayError } from '../errors.js';
import type { PurgeFence, Ticket } from './purge-fence.js';
import type { StoredEntry } from './types.js';

/** Failures worth remembering briefly (memory only): the source is gone or is not a usable image. */
const REMEMBERED_CODES: ReadonlySet<string> = new Set(['E_SOURCE_NOT_FOUND', 'E_UNSUPPORTED_MEDIA', 'E_IMAGE_INVALID']);

/**
 * Fixed per-entry overhead counted against the budget: an entry's meta object, its strings and the typed array's own
 * allocation, none of which is in the body or the key. Measured: 20,000 entries of 10 KB bodies as the service builds
 * them took 1,545 bytes of JS heap and ~2.2 KB of RSS each beyond the body. At 512, a tier full of small article
 * variants (~24,000 of ~10 KB at 256 MiB) held ~35 MiB more than it counted: the soak's JS heap grew 25 → 62 MiB.
 */
export const ENTRY_OVERHEAD = 2048;

/** What an entry counts against the budget. */
const entrySize = (key: string, body: Uint8Array) => body.byteLength + key.length + ENTRY_OVERHEAD;

/**
 * What the negative cache keeps of a failure: its code and detail, not its `cause`. A decoder's error keeps, through
 * its captured stack, the sharp pipeline it came from and so the whole source buffer: 10,000 remembered failures of
 * ~200 KB sources held ~2 GB, invisible to every budget (the "1.3 GiB idle after fuzzing" of issue #14).
 */
function remembered(error: RelayError): RelayError {
  return new RelayError(error.code, error.detail, { retryAfter: error.retryAfter });
}

export interface MemoryTierOptions {
  maxBytes: number;
  maxEntryBytes: number;
  negativeTtlMs: number;
  /** A failure whose work began before a purge is not remembered after it (purge-fence.ts). */
  fence?: PurgeFence;
}

export interface MemoryEntry extends StoredEntry {
  /** The canonical source URL and variant material, for purges by source, host, prefix or tag. */
  source: string;
}

export class MemoryTier {
  private readonly lru: LRUCache<string, MemoryEntry> | undefined;
  private readonly negative: LRUCache<string, RelayError>;
  private readonly maxEntry: number;
  private readonly fence: PurgeFence | undefined;

  constructor(options: MemoryTierOptions) {
    this.fence = options.fence;
    const maxEntry = Math.min(options.maxEntryBytes, options.maxBytes);
    this.maxEntry = maxEntry;
    // A zero budget disables the tier (lru-cache refuses maxSize 0).
    this.lru = options.maxBytes > 0 ? new LRUCache<string, MemoryEntry>({
      maxSize: options.maxBytes,
      maxEntrySize: maxEntry,
      sizeCalculation: (entry, key) => entrySize(key, entry.body),
    }) : undefined;
    this.negative = new LRUCache<string, RelayError>({ max: 10_000, ttl: Math.max(1, options.negativeTtlMs) });
  }

  get(key: string): MemoryEntry | undefined {
    return this.lru?.get(key);
  }

  /**
   * The bytes counted must be the bytes held. A body that is a view into a larger buffer (a store file read with its
   * frame header, a pooled slab) is copied to an exact-size one; an exact-size body (a fetched source, a transform
   * output, which the transformer copies out of libvips) is kept as it is, with no memcpy on the miss path.
   */
  set(key: string, entry: MemoryEntry): void {
    if (!this.lru) return;
    const { body } = entry;
    const isView = body.byteOffset !== 0 || body.byteLength !== body.buffer.byteLength;
    const fits = entrySize(key, body) <= this.maxEntry;
    // new Uint8Array(view) copies (Buffer#slice would not): a fresh ArrayBuffer of exactly byteLength.
    this.lru.set(key, isView && fits ? { ...entry, body: new Uint8Array(body) } : entry);
  }

  delete(key: string): boolean {
    return this.lru?.delete(key) ?? false;
  }

  /** Removes every entry (positive and negative) whose source matches; returns how many were removed. */
  deleteWhere(matches: (source: string, entry: MemoryEntry | undefined) => boolean): number {
    let removed = 0;
    for (const [key, entry] of this.lru?.entries() ?? []) {
      if (matches(entry.source, entry)) removed += Number(this.lru!.delete(key));
    }
    for (const key of [...this.negative.keys()]) {
      if (matches(key.slice(key.indexOf('\n') + 1), undefined)) removed += Number(this.negative.delete(key));
    }
    return removed;
  }

  clear(): number {
    const count = (this.lru?.size ?? 0) + this.negative.size;
    this.lru?.clear();
    this.negative.clear();
    return count;
  }

  /**
   * Runs `work` unless `key` failed recently; a failure worth remembering (404, not an image, undecodable) is kept
   * for the negative TTL, so a broken image does not reach the origin or sharp on every request. Not when a purge
   * came while `work` ran: it may have swept this very key, and the failure may be the purged source's (a 404 the
   * replaced image no longer gives). Any purge counts — a failure carries no tags to match a tag purge by.
   */
  async remembering<T>(key: string, work: () => Promise<T>): Promise<T> {
    const known = this.negative.get(key);
    if (known) throw known;
    const ticket = this.fence?.ticket();
    try {
      return await work();
    } catch (error) {
      if (error instanceof RelayError && REMEMBERED_CODES.has(error.code)) this.rememberFailure(key, error, ticket);
      throw error;
    }
  }

  private rememberFailure(key: string, error: RelayError, ticket: Ticket | undefined): void {
    if (ticket && this.fence!.purgedSince(ticket)) {
      this.fence!.fenced('memory');
      return;
    }
    this.negative.set(key, remembered(error));
  }

  stats(): { entries: number; bytes: number; maxBytes: number; negativeEntries: number } {
    return {
      entries: this.lru?.size ?? 0,
      bytes: this.lru?.calculatedSize ?? 0,
      maxBytes: this.lru?.maxSize ?? 0,
      negativeEntries: this.negative.size,
    };
  }
}
