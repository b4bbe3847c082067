/**
 * A bounded job pool: `slots` jobs run at once (p-limit), at most `maxQueue` wait, and the next one is refused at
 * once with E_OVERLOADED (503 + Retry-After) instead of growing an unbounded backlog of decoded images.
 * A job whose caller aborts while it waits is dropped (it never runs and frees its queue place).
 * Portable: p-limit is pure JS.
 */
import pLimit from 'p-limit';
import { RelayError } from '../errors.js';

export interface PoolOptions {
  slots: number;
  maxQueue: number;
}

export interface PoolStats {
  running: number;
  queued: number;
  rejected: number;
  completed: number;
}

export interface Pool {
  run<T>(fn: () => Promise<T>, signal?: AbortSignal): Promise<T>;
  stats(): PoolStats;
}

const MIN_RETRY_AFTER_S = 1;
const MAX_RETRY_AFTER_S = 5;

export function createPool({ slots, maxQueue }: PoolOptions): Pool {
  if (!Number.isInteger(slots) || slots < 1) throw new RangeError(`pool slots must be a positive integer, got ${slots}`);
  const limit = pLimit(slots);
  const counts = { running: 0, queued: 0, rejected: 0, completed: 0 };
  let averageJobMs = 100; // a moving average, for a Retry-After that reflects the real backlog

  /** Seconds until a place is likely free: the backlog divided among the slots, clamped to 1…5. */
  const retryAfter = () => {
    const seconds = Math.ceil(((counts.queued + counts.running) / slots) * averageJobMs / 1000);
    return Math.min(MAX_RETRY_AFTER_S, Math.max(MIN_RETRY_AFTER_S, seconds));
  };

  const execute = async <T>(fn: () => Promise<T>): Promise<T> => {
    const started = Date.now();
    counts.running++;
    try {
      return await fn();
    } finally {
      counts.running--;
      counts.completed++;
      averageJobMs = averageJobMs * 0.8 + (Date.now() - started) * 0.2;
    }
  };

  const run = <T>(fn: () => Promise<T>, signal?: AbortSignal): Promise<T> => {
    if (signal?.aborted) return Promise.reject(abortReason(signal));
    if (counts.running + counts.queued >= slots + maxQueue) {
      counts.rejected++;
      return Promise.reject(new RelayError('E_OVERLOADED', 'Too many images are being transformed; try again shortly',
        { retryAfter: retryAfter() }));
    }
    return enqueue(fn, signal);
  };

  const enqueue = <T>(fn: () => Promise<T>, signal?: AbortSignal): Promise<T> => new Promise<T>((resolve, reject) => {
    let waiting = true;
    counts.queued++;
    const leaveQueue = () => {
      waiting = false;
      counts.queued--;
      signal?.removeEventListener('abort', onAbort);
    };
    const onAbort = () => {
      if (!waiting) return; // already running: the job itself watches the signal
      leaveQueue();
      reject(abortReason(signal!));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    void limit(async () => {
      if (!waiting) return; // dropped while queued: release the slot at once
      leaveQueue();
      await execute(fn).then(resolve, reject);
    });
  });

  return { run, stats: () => ({ ...counts }) };
}

function abortReason(signal: AbortSignal): unknown {
  return signal.reason ?? new DOMException('The operation was aborted', 'AbortError');
}
