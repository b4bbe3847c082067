/** `GET /stats`: one JSON snapshot of the tiers, queues, breaker, hit ratios and purge log of this instance. */
import type { MemoryTier } from '../cache/memory.js';
import type { NodeStore } from '../cache/node-store.js';
import type { PoolStats } from '../transform/pool.js';
import type { PromMetrics } from './metrics.js';
import type { PurgeFence } from '../cache/purge-fence.js';
import type { PurgeLog } from './purge-log.js';

export interface StatsSources {
  instanceId: string;
  startedAt: number;
  memory: MemoryTier;
  store?: NodeStore;
  transformer?: { stats(): PoolStats };
  metrics: PromMetrics;
  log?: PurgeLog;
  fence?: PurgeFence;
  cdnTargets: readonly string[];
}

const ratio = (part: number, whole: number) => (whole > 0 ? Math.round((part / whole) * 10_000) / 10_000 : null);

export function collectStats(s: StatsSources): Record<string, unknown> {
  return {
    instance: s.instanceId,
    uptimeS: Math.round((Date.now() - s.startedAt) / 1000),
    memory: s.memory.stats(),
    store: storeStats(s.store),
    requests: requestStats(s.metrics),
    transform: s.transformer?.stats() ?? null,
    purgeLog: s.log ? s.log.stats() : null,
    /** Saves refused because a purge came after their work began (purge-fence.ts). */
    purgeFence: s.fence ? s.fence.stats() : null,
    cdn: s.cdnTargets,
  };
}

function storeStats(store: NodeStore | undefined): Record<string, unknown> | null {
  if (!store) return null;
  // The directory store knows its size from its index; S3 would need a full listing, so it says nothing.
  const raw = store.raw as { usage?: () => { bytes: number; entries: number } };
  const usage = typeof raw.usage === 'function' ? raw.usage() : undefined;
  return {
    kind: store.raw.kind,
    entries: usage?.entries ?? null,
    bytes: usage?.bytes ?? null,
    breaker: store.guarded.state(),
    errors: store.guarded.errors,
    skipped: store.guarded.skipped,
    writes: store.writes.stats(),
  };
}

export function requestStats(metrics: PromMetrics): Record<string, unknown> {
  const c = metrics.counts;
  const served = c['HIT-MEMORY'] + c['HIT-STORE'] + c.MISS + c.STALE;
  return {
    served, errors: c.errors,
    byCache: { 'HIT-MEMORY': c['HIT-MEMORY'], 'HIT-STORE': c['HIT-STORE'], MISS: c.MISS, STALE: c.STALE },
    hitRatio: {
      memory: ratio(c['HIT-MEMORY'], served),
      store: ratio(c['HIT-STORE'], served - c['HIT-MEMORY']),
      overall: ratio(c['HIT-MEMORY'] + c['HIT-STORE'] + c.STALE, served),
    },
  };
}
