/**
 * The admin dashboard's memory: every IMGRELAY_STATS_SAMPLE_MS (5 s) one sample of what `/stats` and `/metrics`
 * read — requests per second by X-Cache, hit ratio, hit and miss latency, origin fetches by host, the transform
 * queue, the memory tier against its budget, the store, the process RSS — into a ring of 720 samples (an hour at
 * 5 s). Rates are differences of cumulative counts between two samples, so sampling costs nothing per request.
 * Bounded: 720 samples of at most 10 hosts each, whatever the traffic or the interval.
 */
import type { MemoryTier } from '../cache/memory.js';
import type { NodeStore } from '../cache/node-store.js';
import type { PoolStats } from '../transform/pool.js';
import { LatencyCounts } from './latency-tally.js';
import type { PromMetrics } from './metrics.js';
import { Ring } from './ring.js';
import { requestStats } from './stats.js';

export const HISTORY_SAMPLES = 720;
const TOP_HOSTS = 10;

export interface HostSample { host: string; fetches: number; errors: number; meanMs: number | null }

export interface Sample {
  /** When it was taken (ms since the epoch) and the seconds it covers. */
  t: number;
  intervalS: number;
  /** Requests per second over the interval, by X-Cache, and failed requests. */
  rps: { 'HIT-MEMORY': number; 'HIT-STORE': number; MISS: number; STALE: number; errors: number };
  /** Since start, as `/stats` says it: images served and the overall hit ratio. */
  served: number;
  hitRatioOverall: number | null;
  /** Hits (memory, store, stale) over images served in the interval; null when none was. */
  hitRatio: number | null;
  latencyMs: { hitP50: number | null; hitP95: number | null; missP50: number | null; missP95: number | null };
  origin: { fetchesPerS: number; errorsPerS: number; meanMs: number | null; hosts: HostSample[] };
  transform: { queued: number; running: number; rejectedPerS: number } | null;
  memory: { bytes: number; maxBytes: number; entries: number };
  store: { breaker: string; writeQueue: number; droppedPerS: number; errorsPerS: number } | null;
  rssBytes: number;
}

export interface HistorySources {
  metrics: PromMetrics;
  memory: MemoryTier;
  store?: NodeStore;
  transformer?: { stats(): PoolStats };
  rss: () => number;
  now?: () => number;
}

/** The cumulative counts a sample is the difference of. */
interface Totals {
  at: number;
  counts: PromMetrics['counts'];
  hits: LatencyCounts;
  misses: LatencyCounts;
  origins: Map<string, { fetches: number; errors: number; seconds: number }>;
  rejected: number;
  dropped: number;
  storeErrors: number;
}

export class History {
  private readonly ring: Ring<Sample>;
  private previous: Totals;
  private timer?: ReturnType<typeof setInterval>;
  private readonly now: () => number;

  constructor(private readonly sources: HistorySources, capacity = HISTORY_SAMPLES) {
    this.ring = new Ring(capacity);
    this.now = sources.now ?? Date.now;
    this.previous = this.totals();
  }

  /**
   * Samples every `intervalMs` until `stop` (the timer never holds the process open). A sample that fails is skipped
   * and reported, never thrown from the timer (that would end the process).
   */
  start(intervalMs: number, onError: (error: unknown) => void = () => {}): void {
    this.stop();
    this.timer = setInterval(() => {
      try {
        this.sample();
      } catch (error) {
        onError(error);
      }
    }, intervalMs);
    this.timer.unref?.();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  get capacity(): number {
    return this.ring.capacity;
  }

  /** Oldest first; with `since` (a sample's `t`), only the newer ones: the page polls for what it lacks. */
  samples(since?: number): Sample[] {
    const all = this.ring.toArray();
    return since === undefined ? all : all.filter((sample) => sample.t > since);
  }

  /** Takes one sample now (the timer calls this; tests may too). */
  sample(): Sample {
    const current = this.totals();
    const sample = this.between(this.previous, current);
    this.previous = current;
    this.ring.push(sample);
    return sample;
  }

  private totals(): Totals {
    const { metrics, transformer, store } = this.sources;
    const origins = new Map([...metrics.originTotals].map(([host, t]) => [host, { ...t }]));
    return {
      at: this.now(), counts: { ...metrics.counts }, hits: metrics.tally.hits.copy(), misses: metrics.tally.misses.copy(),
      origins, rejected: transformer?.stats().rejected ?? 0,
      dropped: store?.writes.stats().dropped ?? 0, storeErrors: store?.guarded.errors ?? 0,
    };
  }

  private between(before: Totals, now: Totals): Sample {
    const seconds = Math.max(0.001, (now.at - before.at) / 1000);
    const perS = (a: number, b: number) => Math.round(((b - a) / seconds) * 100) / 100;
    const delta = (key: keyof Totals['counts']) => now.counts[key] - before.counts[key];
    const served = delta('HIT-MEMORY') + delta('HIT-STORE') + delta('MISS') + delta('STALE');
    const cumulative = requestStats(this.sources.metrics) as { served: number; hitRatio: { overall: number | null } };
    return {
      t: now.at, intervalS: Math.round(seconds * 1000) / 1000,
      rps: {
        'HIT-MEMORY': perS(0, delta('HIT-MEMORY')), 'HIT-STORE': perS(0, delta('HIT-STORE')),
        MISS: perS(0, delta('MISS')), STALE: perS(0, delta('STALE')), errors: perS(0, delta('errors')),
      },
      served: cumulative.served, hitRatioOverall: cumulative.hitRatio.overall,
      hitRatio: served > 0 ? round4((served - delta('MISS')) / served) : null,
      latencyMs: {
        hitP50: now.hits.quantileSince(before.hits, 0.5), hitP95: now.hits.quantileSince(before.hits, 0.95),
        missP50: now.misses.quantileSince(before.misses, 0.5), missP95: now.misses.quantileSince(before.misses, 0.95),
      },
      origin: originSample(before.origins, now.origins, seconds),
      transform: this.transformSample(perS(before.rejected, now.rejected)),
      memory: pick(this.sources.memory.stats()),
      store: this.storeSample(perS(before.dropped, now.dropped), perS(before.storeErrors, now.storeErrors)),
      rssBytes: this.sources.rss(),
    };
  }

  private transformSample(rejectedPerS: number): Sample['transform'] {
    const stats = this.sources.transformer?.stats();
    return stats ? { queued: stats.queued, running: stats.running, rejectedPerS } : null;
  }

  private storeSample(droppedPerS: number, errorsPerS: number): Sample['store'] {
    const store = this.sources.store;
    if (!store) return null;
    return { breaker: store.guarded.state(), writeQueue: store.writes.stats().queued, droppedPerS, errorsPerS };
  }
}

const round4 = (value: number) => Math.round(value * 10_000) / 10_000;
const pick = ({ bytes, maxBytes, entries }: { bytes: number; maxBytes: number; entries: number }) => ({ bytes, maxBytes, entries });

/** Fetches, errors and mean fetch time in the interval: overall, and for the 10 hosts with the most fetches. */
function originSample(before: Totals['origins'], now: Totals['origins'], seconds: number): Sample['origin'] {
  const hosts: Array<HostSample & { seconds: number }> = [];
  for (const [host, t] of now) {
    const b = before.get(host) ?? { fetches: 0, errors: 0, seconds: 0 };
    const fetches = t.fetches - b.fetches;
    if (fetches > 0) {
      hosts.push({ host, fetches, errors: t.errors - b.errors, seconds: t.seconds - b.seconds,
        meanMs: Math.round(((t.seconds - b.seconds) / fetches) * 10_000) / 10 });
    }
  }
  const fetches = hosts.reduce((sum, h) => sum + h.fetches, 0);
  const errors = hosts.reduce((sum, h) => sum + h.errors, 0);
  const totalS = hosts.reduce((sum, h) => sum + h.seconds, 0);
  hosts.sort((a, b) => b.fetches - a.fetches || a.host.localeCompare(b.host));
  return {
    fetchesPerS: Math.round((fetches / seconds) * 100) / 100, errorsPerS: Math.round((errors / seconds) * 100) / 100,
    meanMs: fetches > 0 ? Math.round((totalS / fetches) * 10_000) / 10 : null,
    hosts: hosts.slice(0, TOP_HOSTS).map(({ seconds: _s, ...h }) => h),
  };
}
