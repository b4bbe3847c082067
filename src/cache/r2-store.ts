/**
 * An R2 bucket binding (`IMGRELAY_R2` on Workers) as the persistent Store. Objects are the same frames as the S3
 * store's (entry-codec.ts: meta JSON + bytes in one object) under the same `<prefix><key>` layout, so a Node
 * service whose S3 store points at the same bucket through R2's S3 API (with the same IMGRELAY_S3_PREFIX) and the
 * edge share one persistent tier: what either stores, the other finds, and the Node admin's purges reach both.
 *
 * R2 calls take no AbortSignal: the signal is checked before each call and between pages (the guard's deadline
 * bounds the wait, store-guard.ts).
 */
import { assertStoreKey, decodeEntry, decodeMeta, encodeFrame, FRAME_HEADER_BYTES, isStoreKey, metaLengthOf }
  from './entry-codec.js';
import type { EntryMeta, Store, StoredEntry } from './types.js';

/** The parts of the Workers `R2Bucket` this store uses (structural, so it type-checks without Workers types). */
export interface R2BucketLike {
  get(key: string, options?: { range?: { offset: number; length: number } }): Promise<R2ObjectBodyLike | null>;
  head(key: string): Promise<unknown>;
  put(key: string, value: Uint8Array, options?: {
    httpMetadata?: { contentType?: string };
    customMetadata?: Record<string, string>;
  }): Promise<unknown>;
  delete(keys: string | string[]): Promise<void>;
  list(options: { prefix?: string; cursor?: string; limit?: number }): Promise<R2ListLike>;
}

export interface R2ObjectBodyLike {
  arrayBuffer(): Promise<ArrayBuffer>;
}

export interface R2ListLike {
  objects: ReadonlyArray<{ key: string }>;
  truncated: boolean;
  cursor?: string;
}

export interface R2StoreOptions {
  /** Key prefix inside the bucket (IMGRELAY_S3_PREFIX, to share a bucket with the Node S3 store); `/` is added. */
  prefix?: string;
}

/** R2 deletes at most 1000 keys per call and lists at most 1000 per page. */
const BATCH = 1000;
/** First read for `head`: header plus a typical meta; a longer meta costs a second ranged read. */
const HEAD_PROBE_BYTES = 4096;

const normalisePrefix = (prefix: string) => (prefix === '' || prefix.endsWith('/') ? prefix : `${prefix}/`);

export function createR2Store(bucket: R2BucketLike, options: R2StoreOptions = {}): Store {
  return new R2Store(bucket, normalisePrefix(options.prefix ?? ''));
}

class R2Store implements Store {
  readonly kind = 'r2';
  /** Listed objects that are not imgrelay keys (left alone), as in the S3 store. */
  foreignSkipped = 0;

  constructor(private readonly bucket: R2BucketLike, private readonly root: string) {}

  async get(key: string, signal?: AbortSignal): Promise<StoredEntry | undefined> {
    assertStoreKey(key);
    signal?.throwIfAborted();
    const object = await this.bucket.get(this.root + key);
    if (!object) return undefined;
    // A frame that does not decode (torn, foreign) is a miss, never served.
    return decodeEntry(new Uint8Array(await object.arrayBuffer()));
  }

  async head(key: string, signal?: AbortSignal): Promise<EntryMeta | undefined> {
    assertStoreKey(key);
    const probe = await this.readPrefix(key, HEAD_PROBE_BYTES, signal);
    const metaLength = probe && metaLengthOf(probe);
    if (!probe || metaLength === undefined) return undefined;
    if (probe.byteLength >= FRAME_HEADER_BYTES + metaLength) return decodeMeta(probe);
    const full = await this.readPrefix(key, FRAME_HEADER_BYTES + metaLength, signal);
    return full && decodeMeta(full);
  }

  async put(key: string, entry: StoredEntry, signal?: AbortSignal): Promise<void> {
    assertStoreKey(key);
    signal?.throwIfAborted();
    // One PUT publishes meta and body together: a reader never sees half an entry.
    await this.bucket.put(this.root + key, encodeFrame(entry), {
      httpMetadata: { contentType: 'application/octet-stream' },
      customMetadata: { 'imgrelay-frame': '1' },
    });
  }

  async delete(key: string, signal?: AbortSignal): Promise<boolean> {
    assertStoreKey(key);
    signal?.throwIfAborted();
    // R2 deletes absent keys silently; ask first so the answer means something (purge reports use it).
    if (!(await this.bucket.head(this.root + key))) return false;
    await this.bucket.delete(this.root + key);
    return true;
  }

  async deletePrefix(prefix: string, signal?: AbortSignal): Promise<number> {
    let removed = 0;
    // Each page is deleted before the next is listed; the cursor still continues after the deleted keys.
    for await (const keys of this.pages(prefix, signal)) {
      await this.bucket.delete(keys.map((key) => this.root + key));
      removed += keys.length;
    }
    return removed;
  }

  async *list(prefix: string, signal?: AbortSignal): AsyncIterable<string> {
    for await (const keys of this.pages(prefix, signal)) yield* keys;
  }

  /** Imgrelay keys under `prefix`, one R2 page at a time, bucket prefix removed; other objects are never touched. */
  private async *pages(prefix: string, signal?: AbortSignal): AsyncIterable<string[]> {
    let cursor: string | undefined;
    do {
      signal?.throwIfAborted();
      const page = await this.bucket.list({ prefix: this.root + prefix, cursor, limit: BATCH });
      const keys: string[] = [];
      for (const object of page.objects) {
        const key = object.key.slice(this.root.length);
        if (isStoreKey(key)) keys.push(key);
        else this.foreignSkipped += 1;
      }
      if (keys.length > 0) yield keys;
      cursor = page.truncated ? page.cursor : undefined;
    } while (cursor);
  }

  private async readPrefix(key: string, length: number, signal?: AbortSignal): Promise<Uint8Array | undefined> {
    signal?.throwIfAborted();
    const object = await this.bucket.get(this.root + key, { range: { offset: 0, length } });
    return object ? new Uint8Array(await object.arrayBuffer()) : undefined;
  }
}
