/**
 * Single-flight: concurrent calls for one key share one run of the work. The entry is removed as soon as the
 * work settles, so a failure is never served to later callers (nothing half-done is cached here).
 */
export class SingleFlight<T> {
  private readonly inflight = new Map<string, Promise<T>>();

  /** Runs `work` unless a run for `key` is in flight; `joined` tells the caller whether it waited on another. */
  run(key: string, work: () => Promise<T>): { promise: Promise<T>; joined: boolean } {
    const existing = this.inflight.get(key);
    if (existing) return { promise: existing, joined: true };
    const promise = work().finally(() => this.inflight.delete(key));
    this.inflight.set(key, promise);
    return { promise, joined: false };
  }

  get size(): number {
    return this.inflight.size;
  }
}
