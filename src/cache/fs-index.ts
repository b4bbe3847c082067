/**
 * The directory store's in-memory index (fs-store.ts): bytes on disk per key, in recency order, for the size bound
 * and LRU eviction. It also tells the store which keys' files changed, so descriptors kept open for them
 * (fs-frames.ts) are never read again.
 */

/** Recency-ordered index: Map iteration order is insertion order, so re-inserting on access makes it an LRU. */
export class LruIndex {
  private sizes = new Map<string, number>();
  bytes = 0;

  /** `changed` hears of every key whose file is replaced (`touch`) or dropped (`remove`); reads (`seen`) are not. */
  constructor(private readonly changed: (key: string) => void) {}

  get entries(): number { return this.sizes.size; }
  has(key: string): boolean { return this.sizes.has(key); }
  sizeOf(key: string): number | undefined { return this.sizes.get(key); }
  keys(): string[] { return [...this.sizes.keys()]; }

  /** `key` has a new file of `size` bytes. */
  touch(key: string, size: number): void {
    this.remove(key);
    this.seen(key, size);
  }

  /** `key`'s file (`size` bytes) was read: only its recency changes. */
  seen(key: string, size: number): void {
    const old = this.sizes.get(key);
    if (old !== undefined) {
      this.sizes.delete(key);
      this.bytes -= old;
    }
    this.sizes.set(key, size);
    this.bytes += size;
  }

  remove(key: string): boolean {
    this.changed(key);
    const size = this.sizes.get(key);
    if (size === undefined) return false;
    this.sizes.delete(key);
    this.bytes -= size;
    return true;
  }

  /** Puts scanned (older) entries in front of those touched since start-up. */
  mergeOlder(scanned: Array<[string, number]>): void {
    const live = this.sizes;
    this.sizes = new Map();
    this.bytes = 0;
    for (const [key, size] of scanned) if (!live.has(key)) this.seen(key, size);
    for (const [key, size] of live) this.seen(key, size);
  }

  oldestExcept(keep: string): string | undefined {
    for (const key of this.sizes.keys()) if (key !== keep) return key;
    return undefined;
  }
}

/**
 * Deletions seen by puts in flight (fs-store.ts): a put notes when it began; a delete of its key or of a prefix of
 * it since then means the put must not publish. Only kept while puts run, so it stays as small as the write queue.
 */
export class DeletionFence {
  private epoch = 0;
  private readonly recent: Array<{ epoch: number; prefix: string }> = [];
  private readonly running = new Map<number, number>();

  /** A put begins; returns its start epoch (hand it to `deletedSince` and `end`). */
  begin(): number {
    this.running.set(this.epoch, (this.running.get(this.epoch) ?? 0) + 1);
    return this.epoch;
  }

  end(started: number): void {
    const left = (this.running.get(started) ?? 1) - 1;
    if (left > 0) this.running.set(started, left);
    else this.running.delete(started);
    if (this.running.size === 0) this.recent.length = 0;
  }

  /** A key, or every key under `prefix`, was deleted. */
  deleted(prefix: string): void {
    this.epoch += 1;
    if (this.running.size > 0) this.recent.push({ epoch: this.epoch, prefix });
  }

  deletedSince(started: number, key: string): boolean {
    return this.recent.some((d) => d.epoch > started && key.startsWith(d.prefix));
  }
}
