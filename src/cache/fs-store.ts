/**
 * The directory store (IMGRELAY_STORE=fs): one file per entry at `<dir>/<source hash>/<variant>` (purge-log keys at
 * `<dir>/_purge/…`), holding meta and body in one frame (entry-codec.ts) so one `rename` publishes both: a reader
 * sees the old entry, the new one or none, never half of one. A crash between the temp write and the rename leaves
 * a `.tmp-*` file that is never a valid key (never served) and is removed by the start-up scan.
 *
 * Bounded by `maxBytes` (bytes on disk, frames included) with least-recently-used eviction from an in-memory index.
 * The index is rebuilt by an async scan at start-up (ordered by mtime, i.e. write order), so start-up never blocks;
 * `get` reads the file directly and so works before the scan ends. The directory belongs to one process: files
 * written by another process are only seen after a restart. Hot keys' files stay open (fs-frames.ts: one `read`
 * per hit); every replace or removal goes through the index, which closes them.
 *
 * No fsync by default: this is a cache, a torn frame after a power cut fails the length check and reads as a
 * miss. Pass `fsync: true` to trade write latency for durability.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, open, rename, rmdir, unlink } from 'node:fs/promises';
import { dirname, join, sep } from 'node:path';
import type { Logger } from '../logger.js';
import { assertStoreKey, decodeMeta, encodeFrameHead, FRAME_HEADER_BYTES, isIndexKey, metaLengthOf }
  from './entry-codec.js';
import { entryOf, type FrameRead, FrameReader } from './fs-frames.js';
import { DeletionFence, LruIndex } from './fs-index.js';
import { scanDirectory, TEMP_PREFIX, writeTemp } from './fs-io.js';
import type { EntryMeta, Store, StoredEntry } from './types.js';

export interface FsStoreOptions {
  dir: string;
  maxBytes: number;
  logger: Logger;
  fsync?: boolean;
}

export interface FsStore extends Store {
  /** Settles when the start-up scan (index rebuild, temp clean-up, first eviction) is done. */
  readonly ready: Promise<void>;
  /** Bytes and entries currently indexed. */
  usage(): { bytes: number; entries: number };
}

export { TEMP_PREFIX } from './fs-io.js';

const KNOWN_DIRS_BOUND = 4096;
/** Descriptors kept open for hot keys (fs-frames.ts): well under the common 1024 soft limit, sockets need the rest. */
const OPEN_FRAMES = 128;

const isNotFound = (e: unknown) => (e as NodeJS.ErrnoException)?.code === 'ENOENT';

export function createFsStore(options: FsStoreOptions): FsStore {
  return new DirectoryStore(options);
}

class DirectoryStore implements FsStore {
  readonly kind = 'fs';
  readonly ready: Promise<void>;
  private readonly frames = new FrameReader(OPEN_FRAMES);
  private readonly index = new LruIndex((key) => this.frames.forget(key));
  /**
   * Purge-index markers (store-index.ts): empty files kept outside the LRU index, so evicting old entries never
   * evicts the marker a host purge needs to find a still-cached entry. A marker whose entries were evicted stays
   * (one small file per source) until a purge of its host, tag or `all` removes it.
   */
  private readonly markers = new Set<string>();
  /** Our own temp files being written now: the start-up scan must not take them for crash leftovers. */
  private readonly writing = new Set<string>();
  /** Keys deleted while the start-up scan runs: the scan may have seen their files just before. */
  private readonly deletedDuringScan = new Set<string>();
  private scanning = true;
  private closed = false;
  /**
   * Source directories known to exist, so a cold miss (source + variant written together) skips a `mkdir` per
   * write. Only a hint: a directory removed behind our back makes the write fail with ENOENT and `put` makes it again.
   * Cleared when it grows past a bound instead of growing with the number of sources ever seen.
   */
  private readonly knownDirs = new Set<string>();
  /** The store folder with a trailing separator: keys are appended to it (pathOf runs on every hit). */
  private readonly root: string;
  /** Deletions (keys and prefixes) made while puts run: a put that began before one of them must not land. */
  private readonly deletions = new DeletionFence();

  constructor(private readonly options: FsStoreOptions) {
    this.root = join(options.dir, sep);
    this.ready = mkdir(options.dir, { recursive: true }).then(() => this.scan()).catch((e) => {
      this.scanning = false;
      options.logger.error({ err: e, dir: options.dir }, 'fs store: start-up scan failed; the index starts empty');
    });
  }

  usage(): { bytes: number; entries: number } {
    return { bytes: this.index.bytes, entries: this.index.entries };
  }

  async get(key: string, signal?: AbortSignal): Promise<StoredEntry | undefined> {
    assertStoreKey(key);
    if (this.knownAbsent(key)) return undefined;
    let frame: FrameRead;
    try {
      signal?.throwIfAborted();
      frame = await this.frames.read(key, this.pathOf(key), this.index.sizeOf(key));
    } catch (e) {
      if (!isNotFound(e)) throw e;
      this.index.remove(key);
      return undefined;
    }
    const entry = entryOf(frame);
    if (!entry) {
      this.options.logger.warn({ key }, 'fs store: corrupt entry dropped');
      this.index.remove(key);
      await this.unlinkQuietly(this.pathOf(key));
      return undefined;
    }
    // Markers stay out of the LRU bound (the scan adds them to `markers`), else one could be evicted and unlinked.
    if (isIndexKey(key)) return entry;
    // Only keys still indexed: a delete (a purge) while this read ran must not put the key back in the index.
    if (this.index.has(key) || (this.scanning && !this.deletedDuringScan.has(key))) this.index.seen(key, frame.bytes.byteLength);
    return entry;
  }

  async head(key: string, signal?: AbortSignal): Promise<EntryMeta | undefined> {
    assertStoreKey(key);
    signal?.throwIfAborted();
    if (this.knownAbsent(key)) return undefined;
    const handle = await open(this.pathOf(key), 'r').catch((e) => (isNotFound(e) ? undefined : Promise.reject(e)));
    if (!handle) return undefined;
    try {
      const header = Buffer.alloc(FRAME_HEADER_BYTES);
      await handle.read(header, 0, FRAME_HEADER_BYTES, 0);
      const metaLength = metaLengthOf(header);
      if (metaLength === undefined) return undefined;
      const prefix = Buffer.alloc(FRAME_HEADER_BYTES + metaLength);
      await handle.read(prefix, 0, prefix.byteLength, 0);
      return decodeMeta(prefix);
    } finally {
      await handle.close();
    }
  }

  async put(key: string, entry: StoredEntry, signal?: AbortSignal): Promise<void> {
    assertStoreKey(key);
    const frame = [encodeFrameHead(entry), entry.body];
    const bytes = frame[0].byteLength + entry.body.byteLength;
    if (bytes > this.options.maxBytes) {
      this.options.logger.debug({ key, bytes }, 'fs store: entry larger than the whole cache');
      return;
    }
    const started = this.deletions.begin();
    try {
      await this.publish(key, frame, signal);
      // A delete of this key (a purge) ran while the frame was written: the purge answered without seeing it, so the
      // file must not outlive it. A newer put of the same key may have been replaced by ours: a miss, never old bytes.
      if (this.deletions.deletedSince(started, key)) {
        this.index.remove(key);
        this.markers.delete(key);
        await this.unlinkQuietly(this.pathOf(key));
        return;
      }
    } finally {
      this.deletions.end(started);
    }
    // Markers stay out of the LRU bound (see `markers`).
    if (isIndexKey(key)) return void this.markers.add(key);
    this.index.touch(key, bytes);
    await this.evictOverBound(key);
  }

  private async publish(key: string, frame: readonly Uint8Array[], signal?: AbortSignal): Promise<void> {
    const path = this.pathOf(key);
    await this.ensureDir(dirname(path));
    try {
      await this.writeFrame(path, frame, signal);
    } catch (e) {
      // A concurrent deletePrefix (or an operator) may have removed the directory since we last made it.
      if (!isNotFound(e)) throw e;
      this.knownDirs.delete(dirname(path));
      await this.ensureDir(dirname(path));
      await this.writeFrame(path, frame, signal);
    }
  }

  async delete(key: string, signal?: AbortSignal): Promise<boolean> {
    assertStoreKey(key);
    signal?.throwIfAborted();
    this.deletions.deleted(key);
    this.index.remove(key);
    this.markers.delete(key);
    if (this.scanning) this.deletedDuringScan.add(key);
    return this.unlinkQuietly(this.pathOf(key));
  }

  async deletePrefix(prefix: string, signal?: AbortSignal): Promise<number> {
    await this.ready;
    this.deletions.deleted(prefix);
    let removed = 0;
    for (const key of [...this.index.keys(), ...this.markers]) {
      if (!key.startsWith(prefix)) continue;
      signal?.throwIfAborted();
      this.index.remove(key);
      this.markers.delete(key);
      if (await this.unlinkQuietly(this.pathOf(key))) removed += 1;
    }
    const sourceDir = /^([0-9a-f]{64})\/?$/.exec(prefix);
    if (sourceDir) {
      const dir = join(this.options.dir, sourceDir[1]);
      this.knownDirs.delete(dir);
      await rmdir(dir).catch(() => undefined); // gone or not empty
    }
    return removed;
  }

  /** In lexicographic order, like S3, so a purge log named by time reads oldest first on every store. */
  async *list(prefix: string, signal?: AbortSignal): AsyncIterable<string> {
    await this.ready;
    const keys = [...this.index.keys(), ...this.markers].filter((key) => key.startsWith(prefix)).sort();
    for (const key of keys) {
      signal?.throwIfAborted();
      yield key;
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.ready;
    this.frames.close();
  }

  /**
   * Once the start-up scan is done the index lists every file of this process's directory, so a key it lacks is a
   * miss without a disk lookup. That matters on every cold miss (variant and source both miss): a failed `open`
   * costs a thread-pool round trip plus an Error with its stack, more main-thread work than the rest of the lookup.
   */
  private knownAbsent(key: string): boolean {
    return !this.scanning && !this.index.has(key) && !this.markers.has(key);
  }

  /** Keys are checked (assertStoreKey: hex, `source`, safe purge-log segments), so plain concatenation is safe. */
  private pathOf(key: string): string {
    return this.root + key;
  }

  private async unlinkQuietly(path: string): Promise<boolean> {
    try {
      await unlink(path);
      return true;
    } catch (e) {
      if (!isNotFound(e)) this.options.logger.warn({ err: e, path }, 'fs store: unlink failed');
      return false;
    }
  }

  /** Drops least recently used entries until the bound holds; resolves once their files are gone. */
  private async evictOverBound(justWritten = ''): Promise<void> {
    const victims: string[] = [];
    while (this.index.bytes > this.options.maxBytes) {
      const victim = this.index.oldestExcept(justWritten);
      if (victim === undefined) break;
      this.index.remove(victim);
      victims.push(victim);
    }
    await Promise.all(victims.map((key) => this.unlinkQuietly(this.pathOf(key))));
  }

  private async ensureDir(dir: string): Promise<void> {
    if (this.knownDirs.has(dir)) return;
    await mkdir(dir, { recursive: true });
    if (this.knownDirs.size >= KNOWN_DIRS_BOUND) this.knownDirs.clear();
    this.knownDirs.add(dir);
  }

  private async writeFrame(path: string, frame: readonly Uint8Array[], signal?: AbortSignal): Promise<void> {
    const temp = join(dirname(path), `${TEMP_PREFIX}${randomBytes(8).toString('hex')}`);
    this.writing.add(temp);
    try {
      signal?.throwIfAborted();
      await writeTemp(temp, frame, this.options.fsync === true);
      signal?.throwIfAborted();
      await rename(temp, path);
    } catch (e) {
      await this.unlinkQuietly(temp);
      throw e;
    } finally {
      this.writing.delete(temp);
    }
  }

  private async scan(): Promise<void> {
    const { dir, logger } = this.options;
    const removeLeftover = async (path: string) => !this.writing.has(path) && this.unlinkQuietly(path);
    const scanned = await scanDirectory(dir, () => this.closed, removeLeftover);
    const kept = scanned.filter(([key]) => !this.deletedDuringScan.has(key));
    for (const [key] of kept) if (isIndexKey(key)) this.markers.add(key);
    this.index.mergeOlder(kept.filter(([key]) => !isIndexKey(key)));
    this.scanning = false;
    this.deletedDuringScan.clear();
    await this.evictOverBound();
    logger.info({ dir, entries: this.index.entries, bytes: this.index.bytes }, 'fs store: index ready');
  }
}
