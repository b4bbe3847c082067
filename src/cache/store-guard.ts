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

/**
 * Runs `run` with a deadline; settles by the deadline even if `run` ignores its signal. A plain timer and one
 * controller (not AbortSignal.timeout/any): this wraps every store hit, and those cost several times more.
 */
export function withDeadline<T>(
  run: (signal: AbortSignal) => Promise<T>, ms: number, caller?: AbortSignal,
): Promise<T> {
  caller?.throwIfAborted();
  const controller = new AbortController();
  // Settled straight from the timer or the caller's abort (no listener on our own signal, no `finally` promise).
  return new Promise<T>((resolve, reject) => {
    const stop = (reason: unknown) => {
      controller.abort(reason);
      reject(reason);
    };
    const timer = setTimeout(() => stop(new DOMException(`Store call exceeded ${ms} ms`, 'TimeoutError')), ms);
    const onCallerAbort = () => stop(caller?.reason);
    caller?.addEventListener('abort', onCallerAbort, { once: true });
    const done = () => {
      clearTimeout(timer);
      caller?.removeEventListener('abort', onCallerAbort);
    };
    run(controller.signal).then((value) => {
      done();
      resolve(value);
    }, (error: unknown) => {
      done();
      reject(error);
    });
  });
}

class Breaker {
  private consecutive = 0;
  private openUntil = 0;
  private probing = false;
  current: BreakerState = 'closed';

  constructor(
    private readonly failures: number, private readonly coolDownMs: number, private readonly logger: Logger,
  ) {}

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
  return new Guarded(store, options);
}

class Guarded implements GuardedStore {
  readonly kind: string;
  errors = 0;
  skipped = 0;
  private readonly breaker: Breaker;
  private readonly bulkTimeoutMs: number;

  constructor(private readonly store: Store, private readonly options: GuardOptions) {
    this.kind = store.kind;
    this.breaker = new Breaker(options.breaker?.failures ?? 5, options.breaker?.coolDownMs ?? 5000, options.logger);
    this.bulkTimeoutMs = options.bulkTimeoutMs ?? Math.max(30_000, options.timeoutMs);
  }

  state(): BreakerState {
    return this.breaker.peek();
  }

  get(key: string, signal?: AbortSignal): Promise<StoredEntry | undefined> {
    return this.call<StoredEntry | undefined>('get', undefined, (s) => this.store.get(key, s), signal);
  }

  head(key: string, signal?: AbortSignal): Promise<EntryMeta | undefined> {
    const { store } = this;
    if (!store.head) return Promise.resolve(undefined);
    return this.call<EntryMeta | undefined>('head', undefined, (s) => store.head!(key, s), signal);
  }

  put(key: string, entry: StoredEntry, signal?: AbortSignal): Promise<void> {
    return this.call<void>('put', undefined, (s) => this.store.put(key, entry, s), signal);
  }

  putChecked(key: string, entry: StoredEntry, signal?: AbortSignal): Promise<boolean> {
    return this.call('put', false, (s) => this.store.put(key, entry, s).then(() => true), signal);
  }

  delete(key: string, signal?: AbortSignal): Promise<boolean> {
    return this.call('delete', false, (s) => this.store.delete(key, s), signal);
  }

  deletePrefix(prefix: string, signal?: AbortSignal): Promise<number> {
    return this.call('deletePrefix', 0, (s) => this.store.deletePrefix(prefix, s), signal, this.bulkTimeoutMs);
  }

  async *list(prefix: string, caller?: AbortSignal): AsyncIterable<string> {
    if (!this.admitted(caller)) return;
    const stop = new AbortController();
    const signal = caller ? AbortSignal.any([stop.signal, caller]) : stop.signal;
    let settled = false;
    try {
      const keys = this.store.list(prefix, signal)[Symbol.asyncIterator]();
      for (;;) {
        // Each step (one page, for S3) has its own deadline; the listing as a whole may be long.
        const step = await withDeadline(() => keys.next(), this.options.timeoutMs, caller);
        if (step.done) break;
        yield step.value;
      }
      settled = true;
      this.breaker.succeeded();
    } catch (error) {
      if (isRelayError(error)) throw error;
      if (!caller?.aborted) {
        settled = true;
        this.failure('list', error);
      }
    } finally {
      stop.abort();
      // The consumer stopped early, the caller aborted or the key was bad: nothing learnt about the store.
      if (!settled) this.breaker.released();
    }
  }

  close(): Promise<void> {
    return this.store.close?.() ?? Promise.resolve();
  }

  /** False (and counted as skipped when the breaker is the reason) when the call must not reach the store. */
  private admitted(caller?: AbortSignal): boolean {
    if (caller?.aborted) return false;
    if (this.breaker.admit()) return true;
    this.skipped += 1;
    return false;
  }

  private async call<T>(
    op: StoreOp, miss: T, run: (signal: AbortSignal) => Promise<T>, caller?: AbortSignal, ms = this.options.timeoutMs,
  ): Promise<T> {
    if (!this.admitted(caller)) return miss;
    try {
      const result = await withDeadline(run, ms, caller);
      this.breaker.succeeded();
      return result;
    } catch (error) {
      if (isRelayError(error) || caller?.aborted) {
        this.breaker.released();
        if (isRelayError(error)) throw error;
        return miss;
      }
      this.failure(op, error);
      return miss;
    }
  }

  private failure(op: StoreOp, error: unknown): void {
    this.errors += 1;
    this.breaker.failed();
    this.options.logger.warn({ err: error, op, kind: this.kind }, 'store call failed; treated as a miss');
    this.options.onError?.(error, op);
  }
}
