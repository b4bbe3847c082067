/**
 * Reads of whole frames for the directory store, keeping the descriptors of recently read files open (bounded
 * LRU). A store hit then costs one positioned `read` instead of readFile's open + fstat + read + close, each a
 * threadpool round trip with its own main-thread callback: on a store-hit load those round trips were most of the
 * main thread's time.
 *
 * Why an open descriptor stays valid: the store never writes a published file in place (it writes a temp file and
 * renames it over the key), so the bytes behind a descriptor never change; a replaced or removed file is seen
 * through `forget`, which the store calls whenever it replaces or drops a key. The directory belongs to one
 * process (fs-store.ts), so no other writer can change a file behind us.
 *
 * A descriptor is closed only once no read is using it, so a number the kernel hands out again can never be read
 * as another file.
 */
import { close, fstat, open, read } from 'node:fs';
import { decodeEntry } from './entry-codec.js';
import type { EntryMeta, StoredEntry } from './types.js';

/**
 * What the store decoded from a file's bytes, kept with its descriptor: the bytes never change, so the meta JSON
 * is parsed once per file instead of once per hit.
 */
export interface FrameMemo {
  meta?: EntryMeta;
  bodyStart?: number;
}

export interface FrameRead {
  bytes: Buffer;
  /** The same object for every read through the same descriptor; a fresh one otherwise. */
  memo: FrameMemo;
}

/** The entry in a frame (undefined when corrupt), decoding its meta only on the first read of the file. */
export function entryOf({ bytes, memo }: FrameRead): StoredEntry | undefined {
  const { meta, bodyStart } = memo;
  if (meta && bodyStart !== undefined) {
    return { meta, body: new Uint8Array(bytes.buffer, bytes.byteOffset + bodyStart, meta.size) };
  }
  const entry = decodeEntry(bytes);
  if (entry) {
    memo.meta = entry.meta;
    memo.bodyStart = entry.body.byteOffset - bytes.byteOffset;
  }
  return entry;
}

interface Handle {
  fd: number;
  size: number;
  memo: FrameMemo;
  /** Reads in flight on `fd`. */
  users: number;
  /** Forgotten or evicted: close once `users` reaches 0. */
  dropped: boolean;
}

const openFile = (path: string) =>
  new Promise<number>((resolve, reject) => open(path, 'r', (e, fd) => (e ? reject(e) : resolve(fd))));
const sizeOf = (fd: number) =>
  new Promise<number>((resolve, reject) => fstat(fd, (e, stats) => (e ? reject(e) : resolve(stats.size))));
const closeQuietly = (fd: number) => close(fd, () => undefined);

/** `size` bytes from the start of `fd`; rejects when the file is not exactly that long (one byte more is asked). */
function readExactly(fd: number, size: number): Promise<Buffer> {
  const buffer = Buffer.allocUnsafe(size + 1);
  return new Promise((resolve, reject) => read(fd, buffer, 0, size + 1, 0, (error, bytes) => {
    if (error) reject(error);
    else if (bytes !== size) reject(new Error(`fs store: frame is ${bytes === size + 1 ? 'longer' : 'shorter'} than ${size} bytes`));
    else resolve(buffer.subarray(0, size));
  }));
}

export class FrameReader {
  /** Open descriptors by key, least recently read first. */
  private readonly handles = new Map<string, Handle>();
  /** Opens in flight per key, and the keys forgotten while one was: their descriptor must not be kept. */
  private readonly opening = new Map<string, number>();
  private readonly forgotten = new Set<string>();
  private closed = false;

  constructor(private readonly maxOpen: number) {}

  /** The whole file of `key` (at `path`); `sizeHint` (the indexed size) saves an fstat on the first read. */
  async read(key: string, path: string, sizeHint?: number): Promise<FrameRead> {
    const handle = this.handles.get(key);
    if (!handle) return this.readFresh(key, path, sizeHint);
    this.handles.delete(key);
    this.handles.set(key, handle);
    handle.users += 1;
    try {
      return { bytes: await readExactly(handle.fd, handle.size), memo: handle.memo };
    } catch {
      // Only an outside change explains this (truncated, replaced in place): drop the descriptor, read by path.
      this.forget(key);
      return this.readFresh(key, path);
    } finally {
      this.release(handle);
    }
  }

  /** The file of `key` was replaced or removed: never read it through an old descriptor again. */
  forget(key: string): void {
    if (this.opening.has(key)) this.forgotten.add(key);
    this.drop(key);
  }

  /** Closes every idle descriptor (busy ones once their reads end) and keeps no new ones. */
  close(): void {
    this.closed = true;
    for (const key of [...this.handles.keys()]) this.drop(key);
  }

  private async readFresh(key: string, path: string, sizeHint?: number): Promise<FrameRead> {
    this.opening.set(key, (this.opening.get(key) ?? 0) + 1);
    let handle: Handle | undefined;
    try {
      const fd = await openFile(path);
      handle = { fd, size: 0, memo: {}, users: 1, dropped: false };
      let frame: Buffer;
      try {
        frame = await readExactly(fd, sizeHint ?? await sizeOf(fd));
      } catch (error) {
        if (sizeHint === undefined) throw error;
        frame = await readExactly(fd, await sizeOf(fd)); // the index was out of date
      }
      handle.size = frame.byteLength;
      this.keep(key, handle);
      return { bytes: frame, memo: handle.memo };
    } catch (error) {
      if (handle) handle.dropped = true;
      throw error;
    } finally {
      this.doneOpening(key);
      if (handle) this.release(handle);
    }
  }

  private keep(key: string, handle: Handle): void {
    if (this.closed || this.forgotten.has(key) || this.maxOpen <= 0) {
      handle.dropped = true;
      return;
    }
    this.drop(key); // a concurrent first read of the same key got there first
    this.handles.set(key, handle);
    if (this.handles.size > this.maxOpen) this.drop(this.handles.keys().next().value as string);
  }

  private drop(key: string): void {
    const handle = this.handles.get(key);
    if (!handle) return;
    this.handles.delete(key);
    handle.dropped = true;
    this.release(handle, 0);
  }

  private doneOpening(key: string): void {
    const left = (this.opening.get(key) ?? 1) - 1;
    if (left > 0) return void this.opening.set(key, left);
    this.opening.delete(key);
    this.forgotten.delete(key);
  }

  private release(handle: Handle, by = 1): void {
    handle.users -= by;
    if (handle.dropped && handle.users === 0) closeQuietly(handle.fd);
  }
}
