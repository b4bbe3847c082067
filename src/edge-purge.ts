/**
 * How the edge follows the Node admin's purges (docs/edge.md "Purges at the edge"): it reads the same purge log
 * (src/admin/purge-log.ts: `_purge/<ms>-<instance>-<rand>` objects) from the R2 bucket it shares with the Node
 * service's S3 store. A Worker has no timers between requests, so the log is read on request arrival: at most every
 * `pollMs` (in the background, through ctx.waitUntil), and a request waits for the read only when the last
 * complete read started two intervals ago or more (an isolate that sat idle, or a new one). Each purge read is
 * applied to the isolate's memory tier and recorded in the PurgeFence that guards the Cache API and R2 reads.
 *
 * Bound: a request that arrives 2 × pollMs (+ one read of the log) after the purge log entry was written is
 * answered from a fence that knows that purge, by every isolate in every data centre.
 */
import pLimit from 'p-limit';
import { purgeMemory } from './admin/local-purge.js';
import { PURGE_LOG_PREFIX } from './admin/purge-log.js';
import { isSelectors, type Selectors } from './admin/selectors.js';
import { RelayError } from './errors.js';
import type { MemoryTier } from './cache/memory.js';
import type { PurgeFence } from './cache/read-fence.js';
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

export interface PurgeFollowerDeps {
  /** The shared store holding the log: the R2 bucket, unguarded (a failed read must fail the poll, not look empty). */
  log: Store;
  fence: PurgeFence;
  memory: MemoryTier;
  pollMs: number;
  /** Deadline of one poll as a whole. */
  timeoutMs: number;
  logger: Logger;
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
  /** Log keys that were gone or malformed when read: not read again. */
  private readonly ignored = new Map<string, number>();
  readonly stats: PurgeFollowerStats = { polls: 0, failures: 0, applied: 0, removed: 0 };

  constructor(private readonly deps: PurgeFollowerDeps) {}

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

  /** A purge given to this isolate (edge-purge-route.ts): logged for every isolate, applied here at once. */
  async purgeNow(selectors: Selectors): Promise<{ memory: number; purgeLog: string }> {
    const key = await this.deps.writer.append(selectors);
    const at = Number(LOG_KEY.exec(key ?? '')?.[1]);
    if (!key || !Number.isFinite(at)) {
      throw new RelayError('E_UPSTREAM', 'The purge log could not be written to R2: nothing was purged (retry)');
    }
    this.deps.fence.add(key, at, selectors);
    const memory = await purgeMemory(this.deps.memory, selectors);
    this.stats.applied += 1;
    this.stats.removed += memory;
    return { memory, purgeLog: key };
  }

  private async pollOnce(): Promise<void> {
    const started = this.now();
    this.stats.polls += 1;
    try {
      const complete = await withDeadline((signal) => this.readLog(started, signal), this.deps.timeoutMs);
      this.deps.fence.complete = complete;
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

  /** Applies the log's unseen entries (at most READS_PER_POLL); true when none is left unread. */
  private async readLog(started: number, signal: AbortSignal): Promise<boolean> {
    const unseen: Array<[key: string, at: number]> = [];
    for await (const key of this.deps.log.list(PURGE_LOG_PREFIX, signal)) {
      const match = LOG_KEY.exec(key);
      const at = Number(match?.[1]);
      if (!match || at < started - PURGE_LOG_RETENTION_MS) continue;
      if (!this.deps.fence.has(key) && !this.ignored.has(key)) unseen.push([key, at]);
    }
    const limit = pLimit(READ_CONCURRENCY);
    await Promise.all(unseen.slice(0, READS_PER_POLL).map(([key, at]) => limit(() => this.apply(key, at, signal))));
    return unseen.length <= READS_PER_POLL;
  }

  private async apply(key: string, at: number, signal: AbortSignal): Promise<void> {
    const entry = await this.deps.log.get(key, signal);
    const selectors = entry && selectorsOf(entry.body);
    if (!selectors) {
      // Pruned between the listing and the read, or written by something else: nothing to apply.
      this.ignored.set(key, at);
      return;
    }
    this.deps.fence.add(key, at, selectors);
    const removed = await purgeMemory(this.deps.memory, selectors);
    this.stats.applied += 1;
    this.stats.removed += removed;
    this.deps.logger.info({ key, removed }, 'edge: applied a purge from the purge log');
  }

  /** Purges older than the log's retention cover nothing still cached (FENCED_CACHE_MAX_TTL_S). */
  private forget(before: number): void {
    this.deps.fence.prune(before);
    for (const [key, at] of this.ignored) if (at < before) this.ignored.delete(key);
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
