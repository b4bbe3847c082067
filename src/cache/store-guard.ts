/**
 * Wraps a Store so that a slow or failing store is a miss, never an error and never a wait (DESIGN.md "Cache"):
 * - every call has a deadline (`timeoutMs`, combined with the caller's signal) and is raced against it, so it
 *   returns on time even if the store ignores its signal;
 * - failures are logged, counted and turned into a miss (`get`/`head` → undefined, `put` → resolved,
 *   `delete` → false, `deletePrefix` → 0, `list` → ends early);
 * - a circuit breaker opens after `failures` consecutive failures and skips the store for `coolDownMs`, then lets
 *   one probe call through (half-open): success closes it, failure opens it again.
 * A call the caller itself aborted (client gone) is not a store failure. Bad keys (RelayError) are the caller's
 * bug, not the store's: they are thrown as they are and leave the breaker alone.
 */
import { isRelayError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { EntryMeta, Store, StoredEntry } from './types.js';

export type BreakerState = 'closed' | 'open' | 'half-open';
export type StoreOp = 'get' | 'head' | 'put' | 'delete' | 'deletePrefix' | 'list';

export interface GuardOptions {
  timeoutMs: number;
  logger: Logger;
  onError?: (error: unknown, op: StoreOp) => void;
  breaker?: { failures: number; coolDownMs: number };
  /** Deadline of `deletePrefix` as a whole (a purge of many keys); default max(30 s, timeoutMs). */
  bulkTimeoutMs?: number;
}

export interface GuardedStore extends Store {
  state(): BreakerState;
  /** Store failures seen (timeouts included). */
  readonly errors: number;
  /** Calls answered as a miss without touching the store because the breaker was open. */
  readonly skipped: number;
  /** `put` that says whether the entry landed (false: failed, timed out or skipped); never rejects for the store. */
  putChecked(key: string, entry: StoredEntry, signal?: AbortSignal): Promise<boolean>;
}

/** Runs `run` with a deadline; settles by the deadline even if `run` ignores its signal. */
export function withDeadline<T>(run: (signal: AbortSignal) => Promise<T>, ms: number, caller?: AbortSignal): Promise<T> {
  const deadline = AbortSignal.timeout(ms);
  const signal = caller ? AbortSignal.any([deadline, caller]) : deadline;
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    if (signal.aborted) return onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    run(signal).then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

class Breaker {
  private consecutive = 0;
  private openUntil = 0;
  private probing = false;
  current: BreakerState = 'closed';

  constructor(private readonly failures: number, private readonly coolDownMs: number, private readonly logger: Logger) {}

  /** The state as the next call would find it (an elapsed cool-down reads as half-open), admitting nothing. */
  peek(): BreakerState {
    return this.current === 'open' && Date.now() >= this.openUntil ? 'half-open' : this.current;
  }

  /** May this call reach the store? In half-open state only one probe at a time does. */
  admit(): boolean {
    if (this.current === 'open' && Date.now() >= this.openUntil) this.current = 'half-open';
    if (this.current === 'closed') return true;
    if (this.current === 'open' || this.probing) return false;
    this.probing = true;
    return true;
  }

  succeeded(): void {
    this.consecutive = 0;
    this.probing = false;
    if (this.current !== 'closed') this.logger.info({}, 'store breaker closed: the store answers again');
    this.current = 'closed';
  }

  failed(): void {
    this.consecutive += 1;
    const probeFailed = this.current === 'half-open';
    this.probing = false;
    if (!probeFailed && this.consecutive < this.failures) return;
    if (this.current !== 'open') {
      this.logger.warn({ consecutive: this.consecutive, coolDownMs: this.coolDownMs }, 'store breaker open');
    }
    this.current = 'open';
    this.openUntil = Date.now() + this.coolDownMs;
  }

  /** The admitted call ended without telling anything about the store (caller abort, bad key). */
  released(): void {
    this.probing = false;
  }
}

export function guardStore(store: Store, options: GuardOptions): GuardedStore {
  const { timeoutMs, logger } = options;
  const breaker = new Breaker(options.breaker?.failures ?? 5, options.breaker?.coolDownMs ?? 5000, logger);
  const bulkTimeoutMs = options.bulkTimeoutMs ?? Math.max(30_000, timeoutMs);
  let errors = 0;
  let skipped = 0;

  function failure(op: StoreOp, error: unknown): void {
    errors += 1;
    breaker.failed();
    logger.warn({ err: error, op, kind: store.kind }, 'store call failed; treated as a miss');
    options.onError?.(error, op);
  }

  async function call<T>(
    op: StoreOp, miss: T, run: (signal: AbortSignal) => Promise<T>, caller?: AbortSignal, ms = timeoutMs,
  ): Promise<T> {
    if (caller?.aborted) return miss;
    if (!breaker.admit()) {
      skipped += 1;
      return miss;
    }
    try {
      const result = await withDeadline(run, ms, caller);
      breaker.succeeded();
      return result;
    } catch (error) {
      if (isRelayError(error) || caller?.aborted) {
        breaker.released();
        if (isRelayError(error)) throw error;
        return miss;
      }
      failure(op, error);
      return miss;
    }
  }

  async function* list(prefix: string, caller?: AbortSignal): AsyncIterable<string> {
    if (caller?.aborted) return;
    if (!breaker.admit()) {
      skipped += 1;
      return;
    }
    const stop = new AbortController();
    const signal = caller ? AbortSignal.any([stop.signal, caller]) : stop.signal;
    let settled = false;
    try {
      const keys = store.list(prefix, signal)[Symbol.asyncIterator]();
      for (;;) {
        // Each step (one page, for S3) has its own deadline; the listing as a whole may be long.
        const step = await withDeadline(() => keys.next(), timeoutMs, caller);
        if (step.done) break;
        yield step.value;
      }
      settled = true;
      breaker.succeeded();
    } catch (error) {
      if (isRelayError(error)) throw error;
      if (!caller?.aborted) {
        settled = true;
        failure('list', error);
      }
    } finally {
      stop.abort();
      // The consumer stopped early, the caller aborted or the key was bad: nothing learnt about the store.
      if (!settled) breaker.released();
    }
  }

  return {
    kind: store.kind,
    get: (key, signal) => call<StoredEntry | undefined>('get', undefined, (s) => store.get(key, s), signal),
    put: (key, entry, signal) => call<void>('put', undefined, (s) => store.put(key, entry, s), signal),
    putChecked: (key, entry, signal) =>
      call('put', false, (s) => store.put(key, entry, s).then(() => true), signal),
    delete: (key, signal) => call('delete', false, (s) => store.delete(key, s), signal),
    deletePrefix: (prefix, signal) =>
      call('deletePrefix', 0, (s) => store.deletePrefix(prefix, s), signal, bulkTimeoutMs),
    list,
    head: (key, signal) => call<EntryMeta | undefined>('head', undefined,
      (s) => (store.head ? store.head(key, s) : Promise.resolve(undefined)), signal),
    close: () => store.close?.() ?? Promise.resolve(),
    state: () => breaker.peek(),
    get errors() { return errors; },
    get skipped() { return skipped; },
  };
}
