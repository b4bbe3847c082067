/**
 * The bounded job pool (DESIGN "Bounded cost"): `slots` jobs run at once, at most `maxQueue` wait, and waiting is
 * bounded in time and fair.
 * - Overflow is refused at once with E_OVERLOADED (503 + Retry-After) instead of growing a backlog of decoded images.
 * - A job that waits longer than `queueTimeoutMs` leaves the queue with the same 503: a client learns to come back
 *   instead of holding a socket for a slot that may never come.
 * - Heavy jobs (the caller says which, from the cost estimate) hold at most `heavySlots` slots (one on two), so a
 *   light job always finds a slot however many heavy ones wait; a waiting light job goes before waiting heavy ones,
 *   and a heavy job starts only when light work leaves a slot idle besides it and has been quiet for a moment (heavy
 *   work fills idle time).
 * - Waiting is round-robin between clients (one queue per client key; no key = one shared queue): four clients
 *   sending costly work get four turns, not the whole pool, while everyone else keeps theirs.
 * - A job whose caller aborts while it waits is dropped: it never runs and frees its queue place.
 * Portable: plain JS.
 */
import { RelayError } from '../errors.js';
import { FairQueue } from './fair-queue.js';
import { abortReason } from '../limits/abort-reason.js';

export interface PoolOptions {
  slots: number;
  maxQueue: number;
  /** Longest wait for a slot; 0 or absent = unbounded (tests of the scheduling alone). */
  queueTimeoutMs?: number;
  /** Slots heavy jobs may hold at once; default one on two (at least one). */
  heavySlots?: number;
  /** How long the light lane must have been quiet (no light job started or ended) before a heavy job starts. */
  heavyQuietMs?: number;
}

export interface RunOptions {
  signal?: AbortSignal;
  /** Whose job this is (the client's address): waiting is fair between clients. */
  client?: string;
  heavy?: boolean;
}

export interface PoolStats {
  running: number;
  queued: number;
  rejected: number;
  completed: number;
  /** Jobs that waited past the queue timeout (also counted in `rejected`). */
  timedOut: number;
  /** Jobs dropped before they started because their caller went away. */
  dropped: number;
  heavyRunning: number;
}

export interface Pool {
  run<T>(fn: () => Promise<T>, options?: RunOptions): Promise<T>;
  stats(): PoolStats;
}

interface Waiting {
  start(): void;
  heavy: boolean;
  client: string;
}

/** How a job left the queue without running. */
type Departure = 'dropped' | 'timedOut';

const MIN_RETRY_AFTER_S = 1;
const MAX_RETRY_AFTER_S = 5;
const SHARED = '';

export function createPool(options: PoolOptions): Pool {
  if (!Number.isInteger(options.slots) || options.slots < 1) {
    throw new RangeError(`pool slots must be a positive integer, got ${options.slots}`);
  }
  return new BoundedPool(options);
}

class BoundedPool implements Pool {
  private readonly slots: number;
  private readonly maxQueue: number;
  private readonly queueTimeoutMs: number;
  private readonly heavyLimit: number;
  private readonly heavyQuietMs: number;
  private readonly counts = { running: 0, rejected: 0, completed: 0, timedOut: 0, dropped: 0, heavyRunning: 0 };
  private readonly waiting = new FairQueue<Waiting>();
  private averageJobMs = 100; // a moving average, for a Retry-After that reflects the real backlog
  private lastLightActivity = Number.NEGATIVE_INFINITY; // when a light job last started or ended
  private quietTimer: ReturnType<typeof setTimeout> | undefined;

  constructor({ slots, maxQueue, queueTimeoutMs = 0, heavySlots, heavyQuietMs = 500 }: PoolOptions) {
    this.slots = slots;
    this.maxQueue = maxQueue;
    this.queueTimeoutMs = queueTimeoutMs;
    this.heavyLimit = heavySlots ?? Math.max(1, Math.floor(slots / 2));
    this.heavyQuietMs = heavyQuietMs;
  }

  run<T>(fn: () => Promise<T>, options: RunOptions = {}): Promise<T> {
    if (options.signal?.aborted) return Promise.reject(abortReason(options.signal));
    if (this.counts.running + this.waiting.size >= this.slots + this.maxQueue) {
      this.counts.rejected++;
      return Promise.reject(this.overloaded('Too many images are being transformed; try again shortly'));
    }
    return new Promise<T>((resolve, reject) => this.enqueue(fn, options, resolve, reject));
  }

  stats(): PoolStats {
    return { ...this.counts, queued: this.waiting.size };
  }

  /** Queues the job; it leaves the queue by starting, by its caller aborting, or by waiting past the timeout. */
  private enqueue<T>(fn: () => Promise<T>, options: RunOptions, resolve: (v: T) => void, reject: (e: unknown) => void) {
    const { signal, heavy = false } = options;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const leave = (outcome?: Departure, error?: unknown) => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      if (outcome) this.counts[outcome]++;
      if (error !== undefined) reject(error);
    };
    const job: Waiting = { heavy, client: options.client ?? SHARED,
      start: () => { leave(); this.execute(fn, heavy).then(resolve, reject); } };
    const onAbort = () => { if (this.waiting.remove(job)) leave('dropped', abortReason(signal!)); };
    signal?.addEventListener('abort', onAbort, { once: true });
    if (this.queueTimeoutMs > 0) timer = setTimeout(() => this.expire(job, leave), this.queueTimeoutMs);
    this.waiting.add(job);
    this.dispatch();
  }

  private expire(job: Waiting, leave: (outcome: Departure, error: unknown) => void): void {
    if (!this.waiting.remove(job)) return;
    this.counts.rejected++;
    leave('timedOut', this.overloaded(
      `No transform slot became free within ${this.queueTimeoutMs} ms (IMGRELAY_QUEUE_TIMEOUT_MS); try again shortly`));
  }

  private async execute<T>(fn: () => Promise<T>, heavy: boolean): Promise<T> {
    const started = Date.now();
    this.occupy(heavy, 1);
    try {
      return await fn();
    } finally {
      this.occupy(heavy, -1);
      this.counts.completed++;
      this.averageJobMs = this.averageJobMs * 0.8 + (Date.now() - started) * 0.2;
      this.dispatch();
    }
  }

  private occupy(heavy: boolean, delta: 1 | -1): void {
    this.counts.running += delta;
    if (heavy) this.counts.heavyRunning += delta;
    else this.lastLightActivity = performance.now();
  }

  private dispatch(): void {
    while (this.counts.running < this.slots) {
      const job = this.waiting.take((j) => !j.heavy) ?? (this.heavyMayStart() ? this.waiting.take((j) => j.heavy) : undefined);
      if (!job) return this.recheckLater();
      job.start();
    }
  }

  /**
   * Light jobs go first (dispatch). A heavy job starts only when no light job waits, the heavy lane has room, light
   * work leaves at least one more slot idle (on 2 slots: no light job runs), and the light lane has been quiet for
   * `heavyQuietMs`: heavy work fills idle time instead of taking a core from a stream of cheap requests (the bench's
   * attack workload measured cheap cold misses at 0.45× under 4 attackers with the slot cap alone). Under sustained
   * light load heavy jobs wait and meet the queue timeout: costly work yields, never the reverse.
   */
  private heavyMayStart(): boolean {
    return this.heavyHasRoom() && performance.now() - this.lastLightActivity >= this.heavyQuietMs;
  }

  /** The heavy lane has a slot and light work leaves one more idle: only the quiet period may still be missing. */
  private heavyHasRoom(): boolean {
    const { running, heavyRunning } = this.counts;
    return heavyRunning < this.heavyLimit && running - heavyRunning <= Math.max(0, this.slots - this.heavyLimit - 1);
  }

  /** Heavy jobs waiting only for the quiet period: look again when it ends. */
  private recheckLater(): void {
    if (this.quietTimer || this.waiting.size === 0 || this.counts.running >= this.slots || !this.heavyHasRoom()) return;
    // Always a timer when only the quiet period is missing, even if it has just ended: time passed since
    // heavyMayStart looked (or a timer fired early by performance.now()), and a heavy job left with no timer and no
    // running job to end would wait until its queue deadline, or forever without one. Job ends dispatch by themselves.
    const wait = Math.max(0, this.lastLightActivity + this.heavyQuietMs - performance.now());
    this.quietTimer = setTimeout(() => { this.quietTimer = undefined; this.dispatch(); }, wait + 1);
    this.quietTimer.unref?.();
  }

  /** Seconds until a place is likely free: the backlog divided among the slots, clamped to 1…5. */
  private overloaded(detail: string): RelayError {
    const backlog = this.waiting.size + this.counts.running;
    const seconds = Math.ceil((backlog / this.slots) * this.averageJobMs / 1000);
    return new RelayError('E_OVERLOADED', detail,
      { retryAfter: Math.min(MAX_RETRY_AFTER_S, Math.max(MIN_RETRY_AFTER_S, seconds)) });
  }
}
