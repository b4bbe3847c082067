/**
 * The purge log: how a purge on one instance reaches the memory tier of every other instance sharing the store.
 *
 * A purge appends `_purge/<ms, 15 digits>-<instance id>-<random>` to the shared store, its body the canonical
 * selectors as JSON. Every instance lists `_purge/` every `pollMs` and applies entries it has not seen yet (skipping
 * its own) to its memory tier only — the store itself was purged by the instance that took the request. Entries
 * older than `retentionMs` (a day) are pruned by whichever instance sees them first.
 *
 * At start-up every entry within the retention goes into this instance's fence (older ones skip the memory sweep:
 * memory was empty then), and until one poll read the whole log (`complete`) its store reads are misses: a store
 * write of pre-purge bytes that landed after the purge is then refused on read here too.
 *
 * Bound: an entry written at time t is applied everywhere by t + pollMs + the duration of one poll, so no instance
 * serves a purged image from memory longer than that after the purge answered. Keys sort by time, so a listing
 * reads oldest first; instances' clocks may differ, so "not seen yet" is tracked by key, not by a time cursor.
 */
import type { GuardedStore } from '../cache/store-guard.js';
import type { StoredEntry } from '../cache/types.js';
import type { Logger } from '../logger.js';
import { type Selectors, isSelectors } from './selectors.js';

export const PURGE_LOG_PREFIX = '_purge/';
const DAY_MS = 86_400_000;
/**
 * Entries this much older than our start are recorded in the fence only: our memory was empty then, so there is
 * nothing to sweep, but a store entry may have been written late, after that purge (another instance's queued write).
 */
const START_SKEW_MS = 60_000;
const KEY_PATTERN = /^_purge\/(\d{15})-([a-z0-9]+)-[a-z0-9]+$/;

export interface PurgeLogOptions {
  store: GuardedStore;
  /** Short lower-case alphanumeric id of this instance (its own entries are skipped). */
  instanceId: string;
  pollMs: number;
  /**
   * Applies another instance's purge (made at `at`, that instance's clock) to this instance: its fence, and its memory
   * tier unless `sweepMemory` is false (a purge older than this instance). Resolves to the entries removed.
   */
  apply: (selectors: Selectors, at: number, sweepMemory: boolean) => Promise<number>;
  logger: Logger;
  retentionMs?: number;
  now?: () => number;
}

export interface PurgeLogStats {
  pollMs: number;
  polls: number;
  applied: number;
  lastPollAt?: number;
  lastPollMs?: number;
}

export class PurgeLog {
  private readonly seen = new Map<string, number>();
  private readonly startedAt: number;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private running: Promise<unknown> | undefined;
  private stopped = false;
  private knowsEveryPurge = false;
  private scheduled = false;
  private readonly firstPoll: Promise<void>;
  private firstPollDone!: () => void;
  private readonly counts: PurgeLogStats;

  constructor(private readonly options: PurgeLogOptions) {
    this.startedAt = this.now();
    this.counts = { pollMs: options.pollMs, polls: 0, applied: 0 };
    this.firstPoll = new Promise((resolve) => { this.firstPollDone = resolve; });
  }

  /**
   * True once a poll read the whole log and applied every entry in it: until then a purge made before this instance
   * started may be unknown to its fence, so its store reads must be misses (a late write of pre-purge bytes).
   */
  get complete(): boolean {
    return this.knowsEveryPurge;
  }

  /** Resolves when the first poll ended (complete or not), or after `deadlineMs`. */
  polledOnce(deadlineMs: number): Promise<void> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const deadline = new Promise<void>((resolve) => { timer = setTimeout(resolve, deadlineMs); });
    return Promise.race([this.firstPoll, deadline]).finally(() => clearTimeout(timer));
  }

  private now(): number {
    return (this.options.now ?? Date.now)();
  }

  /**
   * Appends selectors to the log, dated `at` (when the purge began: the time the purging instance fenced with, so
   * every instance judges entries by the same moment); resolves to the key, or undefined when the store did not take it.
   */
  async append(selectors: Selectors, at = this.now()): Promise<string | undefined> {
    const random = Math.random().toString(36).slice(2, 10) || '0';
    const key = `${PURGE_LOG_PREFIX}${String(at).padStart(15, '0')}-${this.options.instanceId}-${random}`;
    this.seen.set(key, at);
    const body = new TextEncoder().encode(JSON.stringify({ v: 1, instance: this.options.instanceId, at, selectors }));
    const entry: StoredEntry = {
      body,
      meta: { contentType: 'application/json', etag: `"${key.slice(PURGE_LOG_PREFIX.length)}"`, storedAt: at,
        expiresAt: at + this.retention, sourceUrl: 'imgrelay:purge-log', size: body.byteLength, tags: [] },
    };
    return (await this.options.store.putChecked(key, entry)) ? key : undefined;
  }

  /**
   * Starts polling: the first poll at once (store reads wait for it), then each scheduled after the previous one
   * ended (polls never overlap).
   */
  start(): void {
    if (this.stopped || this.timer) return;
    this.timer = setTimeout(() => {
      this.running = this.pollOnce().catch((error) => this.options.logger.warn({ err: error }, 'purge log poll failed'))
        .finally(() => {
          this.firstPollDone();
          this.timer = undefined;
          this.running = undefined;
          this.start();
        });
    }, this.scheduled ? this.options.pollMs : 0);
    this.scheduled = true;
    this.timer.unref?.();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.firstPollDone();
    await this.running;
  }

  stats(): PurgeLogStats {
    return { ...this.counts };
  }

  /**
   * One poll: applies unseen entries of other instances, prunes old ones. Resolves to the entries applied (those
   * older than this instance go into its fence only and are not counted).
   */
  async pollOnce(): Promise<number> {
    const started = this.now();
    const { store } = this.options;
    const failuresBefore = store.errors + store.skipped;
    let applied = 0;
    let missed = false;
    for await (const key of store.list(PURGE_LOG_PREFIX)) {
      if (this.stopped) break;
      const match = KEY_PATTERN.exec(key);
      if (!match) continue;
      const at = Number(match[1]);
      if (at < started - this.retention) {
        await store.delete(key);
        continue;
      }
      if (this.seen.has(key)) continue;
      if (match[2] === this.options.instanceId) {
        this.seen.set(key, at);
        continue;
      }
      const current = at >= this.startedAt - START_SKEW_MS;
      if (await this.applyEntry(key, at, current)) {
        this.seen.set(key, at);
        if (current) applied += 1;
      } else missed = true;
    }
    // A listing cut short by a store failure ends quietly (store-guard.ts): the guard's counters tell.
    if (!this.stopped && !missed && store.errors + store.skipped === failuresBefore) this.knowsEveryPurge = true;
    this.forgetOld(started);
    this.counts.polls += 1;
    this.counts.applied += applied;
    this.counts.lastPollAt = started;
    this.counts.lastPollMs = this.now() - started;
    return applied;
  }

  private get retention(): number {
    return this.options.retentionMs ?? DAY_MS;
  }

  /** False when the entry could not be read (it is tried again next poll); a malformed entry counts as done. */
  private async applyEntry(key: string, at: number, sweepMemory: boolean): Promise<boolean> {
    const entry = await this.options.store.get(key);
    if (!entry) return false;
    let selectors: unknown;
    try {
      selectors = (JSON.parse(new TextDecoder().decode(entry.body)) as { selectors?: unknown }).selectors;
    } catch {
      selectors = undefined;
    }
    if (!isSelectors(selectors)) {
      this.options.logger.warn({ key }, 'purge log: malformed entry ignored');
      return true;
    }
    const removed = await this.options.apply(selectors, at, sweepMemory);
    this.options.logger.info({ key, removed }, 'purge log: applied a purge from another instance');
    return true;
  }

  /** Keys older than the retention are pruned from the store, so they need not be remembered any more. */
  private forgetOld(now: number): void {
    for (const [key, at] of this.seen) if (at < now - this.retention - 3_600_000) this.seen.delete(key);
  }
}
