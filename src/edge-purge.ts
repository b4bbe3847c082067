/**
 * How the edge follows the Node admin's purges (docs/edge.md "Purges at the edge"): it reads the same purge log
 * (src/admin/purge-log.ts: `_purge/<ms>-<instance>-<rand>` objects) from the R2 bucket it shares with the Node
 * service's S3 store. A Worker has no timers between requests, so the log is read on request arrival: at most every
 * `pollMs` (in the background, through ctx.waitUntil), and a request waits for the read only when the last
 * complete read started two intervals ago or more (an isolate that sat idle, or a new one). Each purge read is
 * applied to the isolate's memory tier and recorded in the isolate's PurgeFence (src/cache/purge-fence.ts, the
 * same fence as on Node): it fences the isolate's loads in flight, and guards the Cache API and R2 reads
 * (src/cache/fenced-store.ts). The follower remembers which log entries it applied (the fence indexes purges by
 * selector, not by entry), and whether it has read the whole log (until then the stores are not trusted).
 *
 * Bound: a request that arrives 2 × pollMs (+ one read of the log) after the purge log entry was written is
 * answered from a fence that knows that purge, by every isolate in every data centre.
 */
import pLimit from 'p-limit';
import { type PurgeableStore, purgeMemory, purgeStore, type StorePurgeResult } from './admin/local-purge.js';
import { PURGE_LOG_PREFIX } from './admin/purge-log.js';
import { isSelectors, type Selectors } from './admin/selectors.js';
import { RelayError } from './errors.js';
import type { MemoryTier } from './cache/memory.js';
import type { PurgeFence } from './cache/purge-fence.js';
import { withDeadline } from './cache/store-guard.js';
import type { Store } from './cache/types.js';
import type { Logger } from './logger.js';

/** purge-log.ts prunes its entries a day after they were written (its default retention). */
export const PURGE_LOG_RETENTION_MS = 86_400_000;
/**
 * Cache API entries live at most this long when the edge follows the log, so every purge that could cover one is
 * still in the log when a new isolate reads it (an hour of margin for clocks). R2 behind it refills them.
 */
export const FENCED_CACHE_MAX_TTL_S = (PURGE_LOG_RETENTION_MS - 3_600_000) / 1000;
const LOG_KEY = /^_purge\/(\d{15})-[a-z0-9]+-[a-z0-9]+$/;
/**
 * Entries read per poll: a request may wait for them, and each is a call to R2 counted against that request's
 * subrequest budget; a longer backlog (a new isolate after a busy day of purges) is read over the next requests.
 */
const READS_PER_POLL = 40;
const READ_CONCURRENCY = 8;
/** Expired log entries deleted per poll: also calls to R2 in a request's budget; a long tail goes over later polls. */
const PRUNES_PER_POLL = 40;

export interface PurgeFollowerDeps {
  /** The shared store holding the log: the R2 bucket, unguarded (a failed read must fail the poll, not look empty). */
  log: Store;
  fence: PurgeFence;
  memory: MemoryTier;
  pollMs: number;
  /** Deadline of one poll as a whole. */
  timeoutMs: number;
  logger: Logger;
  /**
   * The R2 entries behind the fence (indexed: store-index.ts), for purges given to the Worker's purge route: they
   * are deleted like the Node admin deletes its store's (local-purge.ts), since no Node purge reaches that bucket.
   */
  store?: PurgeableStore;
  /** Appends to the log (purge-log.ts's PurgeLog), for purges given to the Worker's purge route. */
  writer: { append(selectors: Selectors): Promise<string | undefined> };
  /** Keeps a background poll alive past the response (ctx.waitUntil). */
  defer: (work: Promise<unknown>) => void;
  now?: () => number;
}

export interface PurgeFollowerStats {
  polls: number;
  failures: number;
  /** Purges applied (each once per isolate). */
  applied: number;
  /** Memory entries they removed. */
  removed: number;
}

export class PurgeFollower {
  /** Start of the last poll that read the whole log. */
  private freshAsOf = Number.NEGATIVE_INFINITY;
  /** After a failed poll, no request starts another one before this. */
  private retryAt = Number.NEGATIVE_INFINITY;
  /**
   * False after a failed poll, until one succeeds: requests then never wait for a poll (an R2 outage must not hold
   * every request for a deadline), and are served with the purges known so far.
   */
  private healthy = true;
  private polling: Promise<void> | undefined;
  /** Log keys applied, or gone or malformed when read (with their time): not read again. */
  private readonly seen = new Map<string, number>();
  /**
   * False until every purge that can still cover a cached entry is known (the first read of the log, or a backlog
   * too long for one poll): the fenced stores read as misses meanwhile, which is always safe.
   */
  private knowsEveryPurge = false;
  readonly stats: PurgeFollowerStats = { polls: 0, failures: 0, applied: 0, removed: 0 };

  constructor(private readonly deps: PurgeFollowerDeps) {}

  /** Whether the last read of the log left nothing unread (the stores behind the fence may be trusted). */
  get complete(): boolean {
    return this.knowsEveryPurge;
  }

  private now(): number {
    return (this.deps.now ?? Date.now)();
  }

  /** On every request: nothing, a background poll, or (fence two intervals old, R2 healthy) a poll to wait for. */
  beforeRequest(): Promise<void> | undefined {
    const now = this.now();
    const age = now - this.freshAsOf;
    if (age < this.deps.pollMs || now < this.retryAt) return undefined;
    const poll = this.poll();
    if (age >= 2 * this.deps.pollMs && this.healthy) return poll;
    this.deps.defer(poll);
    return undefined;
  }

  /** One read of the log (single-flight); never rejects: a failure is logged, counted and retried later. */
  poll(): Promise<void> {
    this.polling ??= this.pollOnce().finally(() => {
      this.polling = undefined;
    });
    return this.polling;
  }

  /**
   * A purge given to this isolate (edge-purge-route.ts): logged for every isolate, applied here at once, and its R2
   * entries deleted (fenced first, so no write of this isolate can put one back; a late write of another is caught
   * by the read check, and past the fence's memory by its horizon: fenced-store.ts).
   */
  async purgeNow(selectors: Selectors): Promise<{ memory: number; purgeLog: string; r2?: StorePurgeResult }> {
    const key = await this.deps.writer.append(selectors);
    const at = Number(LOG_KEY.exec(key ?? '')?.[1]);
    if (!key || !Number.isFinite(at)) {
      throw new RelayError('E_UPSTREAM', 'The purge log could not be written to R2: nothing was purged (retry)');
    }
    this.record(key, at, selectors);
    const memory = await purgeMemory(this.deps.memory, selectors);
    this.stats.applied += 1;
    this.stats.removed += memory;
    const r2 = this.deps.store && await purgeStore(this.deps.store, selectors);
    return { memory, purgeLog: key, r2 };
  }

  private async pollOnce(): Promise<void> {
    const started = this.now();
    this.stats.polls += 1;
    try {
      const complete = await withDeadline((signal) => this.readLog(started, signal), this.deps.timeoutMs);
      this.knowsEveryPurge = complete;
      this.healthy = true;
      if (complete) this.freshAsOf = started;
      this.forget(started - PURGE_LOG_RETENTION_MS);
    } catch (error) {
      this.stats.failures += 1;
      this.healthy = false;
      this.retryAt = started + this.deps.pollMs;
      this.deps.logger.warn({ err: error }, 'edge: reading the purge log failed; purges since the last read wait');
    }
  }

  /**
   * Applies the log's unseen entries (at most READS_PER_POLL); true when none is left unread. Entries past the
   * retention are deleted (at most PRUNES_PER_POLL): the Node service prunes the log it writes, but when the log's
   * only writer is the purge route nothing else would, and every poll would list an ever longer log.
   */
  private async readLog(started: number, signal: AbortSignal): Promise<boolean> {
    const unseen: Array<[key: string, at: number]> = [];
    const expired: string[] = [];
    for await (const key of this.deps.log.list(PURGE_LOG_PREFIX, signal)) {
      const match = LOG_KEY.exec(key);
      const at = Number(match?.[1]);
      if (!match) continue;
      if (at < started - PURGE_LOG_RETENTION_MS) expired.push(key);
      else if (!this.seen.has(key)) unseen.push([key, at]);
    }
    const limit = pLimit(READ_CONCURRENCY);
    await Promise.all([
      ...unseen.slice(0, READS_PER_POLL).map(([key, at]) => limit(() => this.apply(key, at, signal))),
      ...expired.slice(0, PRUNES_PER_POLL).map((key) => limit(() => this.prune(key, signal))),
    ]);
    return unseen.length <= READS_PER_POLL;
  }

  /** A failed prune is retried next poll: it must not fail the reading of the log. */
  private async prune(key: string, signal: AbortSignal): Promise<void> {
    await this.deps.log.delete(key, signal).catch(() => false);
  }

  private async apply(key: string, at: number, signal: AbortSignal): Promise<void> {
    const entry = await this.deps.log.get(key, signal);
    const selectors = entry && selectorsOf(entry.body);
    if (!selectors) {
      // Pruned between the listing and the read, or written by something else: nothing to apply.
      this.seen.set(key, at);
      return;
    }
    this.record(key, at, selectors);
    const removed = await purgeMemory(this.deps.memory, selectors);
    this.stats.applied += 1;
    this.stats.removed += removed;
    this.deps.logger.info({ key, removed }, 'edge: applied a purge from the purge log');
  }

  /** Once per log entry: the fence keeps the latest purge per selector, whatever the order entries are read in. */
  private record(key: string, at: number, selectors: Selectors): void {
    this.seen.set(key, at);
    this.deps.fence.record(selectors, at);
  }

  /**
   * Log entries past the log's retention are no longer listed, so need not be remembered; the fence forgets their
   * marks after its own retention (a day), by when nothing they cover is still cached (FENCED_CACHE_MAX_TTL_S).
   */
  private forget(before: number): void {
    for (const [key, at] of this.seen) if (at < before) this.seen.delete(key);
  }
}

function selectorsOf(body: Uint8Array) {
  try {
    const selectors = (JSON.parse(new TextDecoder().decode(body)) as { selectors?: unknown }).selectors;
    return isSelectors(selectors) ? selectors : undefined;
  } catch {
    return undefined;
  }
}
