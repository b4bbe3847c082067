/**
 * Write-behind to the persistent store (DESIGN.md "Cache"): responses never wait for a store write. Writes go
 * through a bounded queue drained by a few workers; a full queue drops the write (counted) rather than holding
 * memory for a store that cannot keep up. A key queued again before its write started is written once, with the
 * newest entry; a key is never written by two workers at once, so the newest entry is the one that lands.
 * Until its write ends, an entry can be read back (`peek`): a read that misses the store while the write is on its
 * way finds it here rather than fetching and transforming the same bytes again.
 */
import type { Logger } from '../logger.js';
import type { GuardedStore } from './store-guard.js';
import type { Store, StoredEntry } from './types.js';
import type { ByteBudget } from '../limits/byte-budget.js';

export interface WriteBehindOptions {
  /** Entries waiting (not yet being written) at most; more are dropped. */
  maxQueue: number;
  /** Writes in flight at once. */
  concurrency?: number;
  logger: Logger;
  /**
   * Asked as each write starts: false drops it (counted as `fenced`). The purge fence (purge-fence.ts) refuses
   * entries whose work began before a purge covering them, so a queued write never puts purged bytes back.
   */
  admit?: (entry: StoredEntry) => boolean;
  /**
   * The in-flight byte budget (IMGRELAY_MAX_INFLIGHT_MB) the queue's bodies count against, from enqueue until their
   * write ends: the queue is bounded in bytes, not only by count (256 queued 25 MiB sources would be 6 GiB).
   */
  budget?: Pick<ByteBudget, 'tryTake' | 'give'>;
}

export interface WriteBehindStats {
  /** Waiting plus in flight. */
  queued: number;
  /** Body bytes waiting plus in flight. */
  queuedBytes: number;
  dropped: number;
  written: number;
  failed: number;
  /** Writes refused by `admit` (a purge since their work began). */
  fenced: number;
}

export interface WriteBehind {
  /** Queues a write; false when the queue is full and the write was dropped. */
  enqueue(key: string, entry: StoredEntry): boolean;
  /** The newest entry queued or being written for `key`, until its write has ended (landed or failed). */
  peek(key: string): StoredEntry | undefined;
  /** Resolves when every queued write has ended, or after `deadlineMs` (ms from now), whichever comes first. */
  drain(deadlineMs: number): Promise<void>;
  /**
   * Resolves when the writes in flight now have ended, or after `deadlineMs`: a purge waits for these only (the
   * queued ones meet `admit` as they start), so steady misses never keep it waiting for an idle queue.
   */
  settle(deadlineMs: number): Promise<void>;
  stats(): WriteBehindStats;
}

/** A guarded store says whether a put landed (its put resolves either way); a plain store rejects on failure. */
async function putLanded(store: Store | GuardedStore, key: string, entry: StoredEntry): Promise<boolean> {
  if ('putChecked' in store) return store.putChecked(key, entry);
  await store.put(key, entry);
  return true;
}

export function createWriteBehind(store: Store | GuardedStore, options: WriteBehindOptions): WriteBehind {
  const { maxQueue, logger } = options;
  const concurrency = Math.max(1, options.concurrency ?? 4);
  const pending = new Map<string, StoredEntry>();
  /** Keys being written, with the entry being written (readable until the write ends). */
  const inFlight = new Map<string, StoredEntry>();
  const idleWaiters = new Set<() => void>();
  /** The writes running now (their promises settle once each write has ended). */
  const writing = new Set<Promise<void>>();
  const counts = { dropped: 0, written: 0, failed: 0, fenced: 0 };
  let queuedBytes = 0;
  const take = (entry: StoredEntry): boolean => {
    if (options.budget && !options.budget.tryTake(entry.body.byteLength)) return false;
    queuedBytes += entry.body.byteLength;
    return true;
  };
  const give = (entry: StoredEntry): void => {
    options.budget?.give(entry.body.byteLength);
    queuedBytes -= entry.body.byteLength;
  };

  function nextKey(): string | undefined {
    for (const key of pending.keys()) if (!inFlight.has(key)) return key;
    return undefined;
  }

  function settleIdle(): void {
    if (pending.size > 0 || inFlight.size > 0) return;
    for (const wake of idleWaiters) wake();
    idleWaiters.clear();
  }

  async function write(key: string, entry: StoredEntry): Promise<void> {
    try {
      if (await putLanded(store, key, entry)) counts.written += 1;
      else counts.failed += 1;
    } catch (error) {
      counts.failed += 1;
      logger.warn({ err: error, key }, 'write-behind: store write failed');
    } finally {
      give(entry);
      inFlight.delete(key);
      pump();
      settleIdle();
    }
  }

  function pump(): void {
    while (inFlight.size < concurrency) {
      const key = nextKey();
      if (key === undefined) return;
      const entry = pending.get(key) as StoredEntry;
      pending.delete(key);
      if (options.admit && !options.admit(entry)) {
        counts.fenced += 1;
        give(entry); // a fenced write never runs: its bytes go back to the budget now
        settleIdle();
        continue;
      }
      inFlight.set(key, entry);
      const running = write(key, entry);
      writing.add(running);
      void running.finally(() => writing.delete(running));
    }
  }

  function drop(why: string): false {
    counts.dropped += 1;
    if (counts.dropped === 1 || counts.dropped % 100 === 0) logger.warn({ dropped: counts.dropped, maxQueue, queuedBytes }, why);
    return false;
  }

  function enqueue(key: string, entry: StoredEntry): boolean {
    const replaced = pending.get(key);
    if (!replaced && pending.size >= maxQueue) return drop('write-behind queue full: store writes dropped');
    if (!take(entry)) return drop('write-behind over the in-flight byte budget: store writes dropped');
    if (replaced) give(replaced);
    pending.set(key, entry);
    pump();
    return true;
  }

  function drain(deadlineMs: number): Promise<void> {
    if (pending.size === 0 && inFlight.size === 0) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        idleWaiters.delete(done);
        logger.warn({ left: pending.size + inFlight.size }, 'write-behind: drain deadline passed, writes abandoned');
        resolve();
      }, deadlineMs);
      const done = () => {
        clearTimeout(timer);
        resolve();
      };
      idleWaiters.add(done);
    });
  }

  function settle(deadlineMs: number): Promise<void> {
    if (writing.size === 0) return Promise.resolve();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const deadline = new Promise<void>((resolve) => { timer = setTimeout(resolve, deadlineMs); });
    return Promise.race([Promise.allSettled([...writing]).then(() => undefined), deadline])
      .finally(() => clearTimeout(timer));
  }

  return {
    enqueue, drain, settle,
    // A key queued again while its write runs: the waiting entry is the newer one.
    peek: (key) => pending.get(key) ?? inFlight.get(key),
    stats: () => ({ queued: pending.size + inFlight.size, queuedBytes, ...counts }),
  };
}
