/**
 * Per-host upstream concurrency: one p-limit per host, created on first use and dropped as soon as its
 * last task settles, so a crawl over a million hosts does not keep a million limiters alive.
 */
import pLimit, { type LimitFunction } from 'p-limit';

interface Entry {
  limit: LimitFunction;
  /** Tasks queued or running in `limit`; the entry is dropped when it reaches 0. */
  tasks: number;
}

export interface HostLimiters {
  /**
   * Runs `task` under `host`'s limit. Rejects with `signal.reason` as soon as `signal` aborts, even while
   * still queued (the queued task then starts, sees the abort and ends at once, keeping the bound exact).
   */
  run<T>(host: string, signal: AbortSignal, task: () => Promise<T>): Promise<T>;
  /** Number of live limiters (for tests and stats). */
  size(): number;
}

export function createHostLimiters(perHost: number): HostLimiters {
  const entries = new Map<string, Entry>();
  const entryFor = (host: string): Entry => {
    let entry = entries.get(host);
    if (!entry) entries.set(host, (entry = { limit: pLimit(perHost), tasks: 0 }));
    return entry;
  };
  return {
    run(host, signal, task) {
      const entry = entryFor(host);
      entry.tasks++;
      const settled = entry.limit(async () => {
        signal.throwIfAborted();
        return task();
      });
      settled.finally(() => {
        if (--entry.tasks === 0 && entries.get(host) === entry) entries.delete(host);
      }).catch(() => {});
      return raceAbort(settled, signal);
    },
    size: () => entries.size,
  };
}

function raceAbort<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}
