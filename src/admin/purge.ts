/**
 * A purge, end to end: this instance's store and memory, then the other instances (purge log), then the CDN.
 * The order matters: the store goes before memory (else a request in between would promote the old bytes from
 * the store back into memory), memory is swept again after the store (for exactly that race), and the CDN is
 * purged last, once the origin it refills from no longer has the old bytes.
 *
 * With other instances (a shared log), two races remain: another instance's queued store write of an old entry may
 * land after our store purge, and a CDN may refill from an instance that has not polled the log yet. So the whole
 * purge runs once more, in the background, two poll intervals later (every instance has applied the log by then).
 */
import type { MemoryTier } from '../cache/memory.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics.js';
import type { CdnFanout, CdnResult } from './cdn.js';
import { type PurgeableStore, purgeMemory, purgeStore } from './local-purge.js';
import type { PurgeLog } from './purge-log.js';
import { type ResolvedPurge, type Selectors, cdnTags } from './selectors.js';

export interface PurgeReport {
  /** Entries removed from this instance's memory tier. */
  memory: number;
  /** Entries removed from the persistent store; null when there is none (IMGRELAY_STORE=none). */
  store: number | null;
  /** Objects under the store's prefix that are not imgrelay keys: met, left alone, counted (absent when none). */
  storeSkipped?: number;
  /** How the other instances learn of it: `logged` (purge log), or why they do not. */
  instances: string;
  purgeLog?: string;
  cdn: CdnResult[];
  warnings?: string[];
}

export interface PurgerDeps {
  memory: MemoryTier;
  store?: PurgeableStore;
  log?: PurgeLog;
  cdn: CdnFanout;
  metrics: Metrics;
  logger: Logger;
  pollMs: number;
}

export const NO_SHARED_LOG = 'not reached: IMGRELAY_STORE=none has no shared purge log, so other instances keep '
  + 'their memory copies until those expire (send the purge to each instance)';

export class Purger {
  constructor(private readonly deps: PurgerDeps) {}

  private readonly settling = new Set<ReturnType<typeof setTimeout>>();
  private readonly running = new Set<Promise<unknown>>();
  private closed = false;

  async purge(resolved: ResolvedPurge, settle = true): Promise<PurgeReport> {
    const { selectors } = resolved;
    const warnings: string[] = [];
    let memory = await purgeMemory(this.deps.memory, selectors);
    let store: number | null = null;
    let storeSkipped = 0;
    if (this.deps.store) {
      const result = await purgeStore(this.deps.store, selectors);
      store = result.removed;
      storeSkipped = result.skipped;
      if (result.failures > 0) {
        warnings.push(`store: ${result.failures} call(s) failed during the purge; some entries may remain: purge again`);
      }
    }
    memory += await purgeMemory(this.deps.memory, selectors);
    const { instances, purgeLog } = await this.tellInstances(selectors);
    const plan = { urls: resolved.publicUrls, tags: selectors.all ? [] : await cdnTags(selectors), all: selectors.all };
    const cdn = await this.deps.cdn.purge(plan);
    if (purgeLog && settle) this.settleLater(resolved);
    for (const kind of selectorKinds(selectors)) this.deps.metrics.purge(kind);
    return { memory, store, ...(storeSkipped ? { storeSkipped } : {}), instances, ...(purgeLog ? { purgeLog } : {}), cdn, ...(warnings.length ? { warnings } : {}) };
  }

  /** Stops pending settle passes and waits for one in progress. */
  async close(): Promise<void> {
    this.closed = true;
    for (const timer of this.settling) clearTimeout(timer);
    this.settling.clear();
    await Promise.allSettled([...this.running]);
  }

  private settleLater(resolved: ResolvedPurge): void {
    if (this.closed) return;
    const timer = setTimeout(() => {
      this.settling.delete(timer);
      const pass = this.purge(resolved, false).then(
        (report) => this.deps.logger.info({ report }, 'purge settle pass done'),
        (error: unknown) => this.deps.logger.warn({ err: error }, 'purge settle pass failed'));
      this.running.add(pass);
      void pass.finally(() => this.running.delete(pass));
    }, this.deps.pollMs * 2);
    timer.unref?.();
    this.settling.add(timer);
  }

  /** Applies a purge read from the log (another instance's): memory only, the store is shared and done. */
  applyFromLog(selectors: Selectors): Promise<number> {
    this.deps.metrics.purge('log');
    return purgeMemory(this.deps.memory, selectors);
  }

  private async tellInstances(selectors: Selectors): Promise<{ instances: string; purgeLog?: string }> {
    if (!this.deps.log) return { instances: NO_SHARED_LOG };
    const key = await this.deps.log.append(selectors);
    if (!key) {
      this.deps.logger.error({}, 'purge log append failed: other instances keep their memory copies');
      return { instances: 'not reached: the purge log could not be written to the store (retry the purge)' };
    }
    return { instances: 'logged', purgeLog: key };
  }
}

function selectorKinds(selectors: Selectors): string[] {
  if (selectors.all) return ['all'];
  const kinds: Array<[string, number]> = [['urls', selectors.sources.length], ['hosts', selectors.hosts.length],
    ['prefixes', selectors.prefixes.length], ['tags', selectors.tags.length]];
  return kinds.filter(([, n]) => n > 0).map(([kind]) => kind);
}
