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
