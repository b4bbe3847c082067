/**
 * The on-disk / in-bucket form of one cache entry, shared by the directory and S3 stores, plus the key rules both
 * enforce. One frame holds metadata and body, so one rename (fs) or one PUT (S3) publishes both at once:
 *
 *   magic "IRE1" (4 bytes) | meta JSON length (uint32 BE) | meta JSON (UTF-8) | body
 *
 * Metadata lives in the frame rather than in S3 user metadata because that is capped at 2 KB and a canonical
 * source URL alone may be 8 KB. A frame whose body length disagrees with `meta.size` (torn write, foreign file)
 * decodes as `undefined`: it is never served. Portable (no Buffer at import time): the R2 store on Workers uses
 * `encodeFrame`, so a bucket written by the S3 store (R2 through its S3 API) reads the same at the edge.
 */
import { RelayError } from '../errors.js';
import type { EntryMeta, StoredEntry } from './types.js';

const MAGIC = new TextEncoder().encode('IRE1');
export const FRAME_HEADER_BYTES = 8;
/** Refuse absurd meta lengths from a corrupt header before allocating anything. */
const MAX_META_BYTES = 1 << 20;

export function encodeEntry(entry: StoredEntry): Buffer {
  const frame = encodeFrame(entry);
  return Buffer.from(frame.buffer, frame.byteOffset, frame.byteLength);
}

/** The same frame as a plain Uint8Array: no Buffer, so the Workers build (R2 store) writes it too. */
export function encodeFrame(entry: StoredEntry): Uint8Array {
  const head = encodeFrameHead(entry);
  const frame = new Uint8Array(head.byteLength + entry.body.byteLength);
  frame.set(head, 0);
  frame.set(entry.body, head.byteLength);
  return frame;
}

/**
 * Everything of a frame before the body (magic, meta length, meta). A writer that can gather (fs `writev`) sends
 * `[head, body]` as they are instead of copying a megabyte-sized body into one frame first.
 */
export function encodeFrameHead(entry: StoredEntry): Uint8Array {
  const meta = new TextEncoder().encode(JSON.stringify({ ...entry.meta, size: entry.body.byteLength }));
  const head = new Uint8Array(FRAME_HEADER_BYTES + meta.byteLength);
  head.set(MAGIC, 0);
  new DataView(head.buffer).setUint32(4, meta.byteLength);
  head.set(meta, FRAME_HEADER_BYTES);
  return head;
}

/** Length of the meta JSON announced by a frame header, or undefined when the header is not ours. */
export function metaLengthOf(header: Uint8Array): number | undefined {
  if (header.byteLength < FRAME_HEADER_BYTES) return undefined;
  if (!MAGIC.every((byte, i) => header[i] === byte)) return undefined;
  const length = new DataView(header.buffer, header.byteOffset, FRAME_HEADER_BYTES).getUint32(4);
  return length > MAX_META_BYTES ? undefined : length;
}

/** Parses the meta of a frame prefix (at least header + meta bytes); undefined when malformed. */
export function decodeMeta(frame: Uint8Array): EntryMeta | undefined {
  const length = metaLengthOf(frame);
  if (length === undefined || frame.byteLength < FRAME_HEADER_BYTES + length) return undefined;
  const json = new TextDecoder().decode(frame.subarray(FRAME_HEADER_BYTES, FRAME_HEADER_BYTES + length));
  try {
    const meta = JSON.parse(json) as EntryMeta;
    return isEntryMeta(meta) ? meta : undefined;
  } catch {
    return undefined;
  }
}

export function decodeEntry(frame: Uint8Array): StoredEntry | undefined {
  const meta = decodeMeta(frame);
  if (!meta) return undefined;
  const bodyStart = FRAME_HEADER_BYTES + (metaLengthOf(frame) as number);
  if (frame.byteLength - bodyStart !== meta.size) return undefined;
  // A plain Uint8Array view, not a copy (the frame was read for this entry alone), and not a Buffer, so every
  // store hands out the same type.
  return { meta, body: new Uint8Array(frame.buffer, frame.byteOffset + bodyStart, meta.size) };
}

/** Whether a parsed value has the shape of EntryMeta (shared with the Cache API store). */
export function isEntryMeta(value: unknown): value is EntryMeta {
  if (typeof value !== 'object' || value === null) return false;
  const m = value as Record<string, unknown>;
  return typeof m.contentType === 'string' && typeof m.etag === 'string' && typeof m.storedAt === 'number'
    && typeof m.expiresAt === 'number' && typeof m.sourceUrl === 'string' && typeof m.size === 'number'
    && Number.isSafeInteger(m.size) && (m.size as number) >= 0 && Array.isArray(m.tags);
}

// ── keys ──────────────────────────────────────────────────────────────────────────────────────────

const ENTRY_KEY = /^[0-9a-f]{64}\/(?:source|[0-9a-f]{64})$/;
/** Purge-log keys (admin): `_purge/` then segments of safe characters; no segment starts with a dot. */
const PURGE_KEY = /^_purge(?:\/[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}){1,4}$/;
/** Index markers (store-index.ts): `_index/` then safe segments, ending with the source hash they point to. */
const INDEX_KEY = /^_index(?:\/[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}){1,3}\/[0-9a-f]{64}$/;

/** A cache entry's key (`<source hash>/source` or `<source hash>/<variant hash>`). */
export function isEntryKey(key: string): boolean {
  return ENTRY_KEY.test(key);
}

export function isIndexKey(key: string): boolean {
  return INDEX_KEY.test(key);
}

export function isStoreKey(key: string): boolean {
  return ENTRY_KEY.test(key) || PURGE_KEY.test(key) || INDEX_KEY.test(key);
}

/** Stores refuse anything else, so a key can never name a path outside the store or a temp file. */
export function assertStoreKey(key: string): void {
  if (typeof key !== 'string' || !isStoreKey(key)) {
    throw new RelayError('E_BAD_REQUEST', `Invalid cache key: ${JSON.stringify(String(key).slice(0, 200))}`);
  }
}
