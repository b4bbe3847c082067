/**
 * A purge, end to end: the fence first, then this instance's store and memory, then the other instances (purge
 * log), then the CDN.
 *
 * The fence (src/cache/purge-fence.ts) is recorded before anything is removed: from then on no work that began
 * earlier (a load, a revalidation, a store read, a queued store write) saves its result, so what the purge removes
 * stays removed. The store goes before memory and memory is swept again after it, for a request that promoted the
 * old bytes in between; the CDN is purged last, once the origin it refills from no longer has the old bytes.
 *
 * Other instances apply the purge from the shared log: they fence their own work in flight the same way, and a store
 * write of theirs that lands after our store purge is refused on read (its work began before the purge). Settle
 * passes delete such late writes from the store and purge the CDN once more (memory and fences are already exact),
 * leaving the new bytes written since: see `settle` and `settleDelays`.
 */
import type { MemoryTier } from '../cache/memory.js';
import { DEFAULT_SKEW_MS, type PurgeFence } from '../cache/purge-fence.js';
import type { EntryMeta } from '../cache/types.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics.js';
import type { CdnFanout } from './cdn.js';
import { type PurgeableStore, purgeMemory, purgeStore, settleStore } from './local-purge.js';
import type { PurgeLog } from './purge-log.js';
import { buildReport, type PurgeReport, type ReportParts } from './purge-report.js';
import { type ResolvedPurge, type Selectors, cdnTags, matcherFor } from './selectors.js';

export type { PurgeReport, TierReport } from './purge-report.js';

export interface PurgerDeps {
  memory: MemoryTier;
  store?: PurgeableStore;
  log?: PurgeLog;
  cdn: CdnFanout;
  metrics: Metrics;
  logger: Logger;
  pollMs: number;
  /** The store's per-call deadline (STORE_TIMEOUT_MS): bounds when another instance's late write can still land. */
  storeTimeoutMs?: number;
  /** Without one, nothing in flight is fenced (the tiers are still swept). */
  fence?: PurgeFence;
  /** Named in the report. */
  instanceId?: string;
  now?: () => number;
}

/** Attempts one store write may take (the S3 client's maxAttempts; the directory store tries once). */
const STORE_WRITE_ATTEMPTS = 2;
/** Covers the duration of the poll that learns of the purge and timer lateness. */
const SETTLE_SLACK_MS = 1000;

export const NO_SHARED_LOG = 'not reached: IMGRELAY_STORE=none has no shared purge log, so other instances keep '
  + 'their memory copies until those expire (send the purge to each instance)';

export class Purger {
  constructor(private readonly deps: PurgerDeps) {}

  private readonly settling = new Set<ReturnType<typeof setTimeout>>();
  private readonly running = new Set<Promise<unknown>>();
  private closed = false;

  async purge(resolved: ResolvedPurge): Promise<PurgeReport> {
    const { selectors } = resolved;
    const at = (this.deps.now ?? Date.now)();
    const fenced = this.fence(selectors, at);
    const writesFenced = this.deps.fence?.stats().fenced.write ?? 0;
    const local = await this.sweepLocal(selectors);
    const instances = await this.tellInstances(selectors, at);
    const cdn = await this.purgeCdn(resolved);
    if (instances.purgeLog) this.settleLater(resolved, at);
    for (const kind of selectorKinds(selectors)) this.deps.metrics.purge(kind);
    const store: ReportParts['store'] = local.store && this.deps.store
      ? { kind: this.deps.store.raw.kind, ...local.store, fenced: (this.deps.fence?.stats().fenced.write ?? 0) - writesFenced }
      : undefined;
    return buildReport({ instance: this.deps.instanceId ?? 'this', memory: { removed: local.memory, fenced }, store,
      instances, cdn });
  }

  /** Stops pending settle passes and waits for one in progress. */
  async close(): Promise<void> {
    this.closed = true;
    for (const timer of this.settling) clearTimeout(timer);
    this.settling.clear();
    await Promise.allSettled([...this.running]);
  }

  /**
   * Applies a purge read from the log (another instance's, made at `at` on its clock): fence, then memory (unless
   * `sweepMemory` is false: a purge older than this instance, whose memory was empty then).
   */
  async applyFromLog(selectors: Selectors, at: number, sweepMemory = true): Promise<number> {
    this.fence(selectors, at);
    if (!sweepMemory) return 0;
    this.deps.metrics.purge('log');
    return purgeMemory(this.deps.memory, selectors);
  }

  /** Records the purge in the fence; returns how many works in flight it fences. */
  private fence(selectors: Selectors, at: number): number {
    if (!this.deps.fence) return 0;
    const matches = matcherFor(selectors);
    return this.deps.fence.record(selectors, at, (source) => matches(source, []));
  }

  /** Memory, store, memory again (see the header). */
  private async sweepLocal(selectors: Selectors) {
    let memory = await purgeMemory(this.deps.memory, selectors);
    const store = this.deps.store ? await purgeStore(this.deps.store, selectors) : undefined;
    memory += await purgeMemory(this.deps.memory, selectors);
    return { memory, store };
  }

  private async purgeCdn(resolved: ResolvedPurge) {
    const { selectors } = resolved;
    const plan = { urls: resolved.publicUrls, tags: selectors.all ? [] : await cdnTags(selectors), all: selectors.all };
    return this.deps.cdn.purge(plan);
  }

  private settleLater(resolved: ResolvedPurge, at: number): void {
    for (const delayMs of settleDelays(this.deps.pollMs, this.deps.storeTimeoutMs)) this.settleAfter(resolved, at, delayMs);
  }

  private settleAfter(resolved: ResolvedPurge, at: number, delayMs: number): void {
    if (this.closed) return;
    const timer = setTimeout(() => {
      this.settling.delete(timer);
      const pass = this.settle(resolved, at).then(
        (report) => this.deps.logger.info({ report }, 'purge settle pass done'),
        (error: unknown) => this.deps.logger.warn({ err: error }, 'purge settle pass failed'));
      this.running.add(pass);
      void pass.finally(() => this.running.delete(pass));
    }, delayMs);
    timer.unref?.();
    this.settling.add(timer);
  }

  /**
   * A later pass: the store and the CDN again (a CDN may have refilled from a slow instance). Only what may hold
   * bytes from before the purge goes: entries whose work began before the purge made at `at` (this clock), or within
   * the clock skew every reader refuses anyway (fenced-store.ts) — never the new bytes written since, which every
   * instance would otherwise fetch from the origin again. Memory is exact behind the fence (every save checks it);
   * without a fence it is swept again.
   */
  private async settle(resolved: ResolvedPurge, at: number) {
    const { selectors } = resolved;
    const { store, fence, memory } = this.deps;
    const predatesPurge = (meta: EntryMeta) => meta.startedAt === undefined || meta.startedAt < at + DEFAULT_SKEW_MS;
    const swept = fence ? 0 : await purgeMemory(memory, selectors);
    const stored = store ? await settleStore(store, selectors, predatesPurge) : undefined;
    return { memory: swept, store: stored?.removed ?? null, cdn: await this.purgeCdn(resolved) };
  }

  private async tellInstances(selectors: Selectors, at: number): Promise<ReportParts['instances']> {
    if (!this.deps.log) return { state: 'none', detail: NO_SHARED_LOG };
    const key = await this.deps.log.append(selectors, at);
    if (!key) {
      this.deps.logger.error({}, 'purge log append failed: other instances keep their memory copies');
      return { state: 'failed', detail: 'not reached: the purge log could not be written to the store (retry the purge)' };
    }
    return { state: 'done', detail: 'logged', purgeLog: key };
  }
}

/**
 * When the settle pass runs: two poll intervals after the purge (every instance has applied it by then, so a CDN
 * refilled from a slow one is purged again), and once more when every store write another instance started before it
 * learnt of the purge has surely ended — it learns within one poll, and a write then lasts at most its deadline
 * (STORE_TIMEOUT_MS, across the S3 client's attempts) — so such a late write is deleted from the store, not only
 * refused on read while the fence's mark lives (a day).
 */
export function settleDelays(pollMs: number, storeTimeoutMs = 0): number[] {
  const first = pollMs * 2;
  const lateWrites = pollMs + storeTimeoutMs * STORE_WRITE_ATTEMPTS + SETTLE_SLACK_MS;
  return lateWrites > first ? [first, lateWrites] : [first];
}

function selectorKinds(selectors: Selectors): string[] {
  if (selectors.all) return ['all'];
  const kinds: Array<[string, number]> = [['urls', selectors.sources.length], ['hosts', selectors.hosts.length],
    ['prefixes', selectors.prefixes.length], ['tags', selectors.tags.length]];
  return kinds.filter(([, n]) => n > 0).map(([kind]) => kind);
}
