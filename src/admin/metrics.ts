/**
 * The Prometheus implementation of `Metrics` (src/metrics.ts), one registry per running node (tests boot several
 * in one process). Counters and histograms are fed by the core's hooks; gauges for queues, tiers and the store
 * breaker are read from their owners when scraped. Also keeps the few plain counts /stats shows (hit ratios).
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { MemoryTier } from '../cache/memory.js';
import type { FenceStats } from '../cache/purge-fence.js';
import type { GuardedStore } from '../cache/store-guard.js';
import type { WriteBehind } from '../cache/write-behind.js';
import type { Metrics, RequestSample, Stage } from '../metrics.js';
import type { PoolStats } from '../transform/pool.js';
import type { ByteBudgetStats } from '../limits/byte-budget.js';
import { LatencyTally } from './latency-tally.js';

export interface MetricSources {
  memory: MemoryTier;
  transformer?: { stats(): PoolStats & { timeouts?: number } };
  store?: { guarded: GuardedStore; writes: WriteBehind };
  fence?: { stats(): FenceStats };
  /** IMGRELAY_MAX_INFLIGHT_MB (src/limits/byte-budget.ts). */
  budget?: { stats(): ByteBudgetStats };
}

/** Distinct origin hosts labelled; the rest count as `other` (hosts come from article URLs: unbounded). */
const MAX_HOST_LABELS = 200;
const LATENCY_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

export class PromMetrics implements Metrics {
  readonly registry = new Registry();
  /** Served images by X-Cache value, and failed requests: the inputs of the hit ratios in /stats. */
  readonly counts = { 'HIT-MEMORY': 0, 'HIT-STORE': 0, MISS: 0, STALE: 0, errors: 0 };
  /** Hit and miss latencies in fine buckets, for the dashboard's p50/p95 (history.ts). */
  readonly tally = new LatencyTally();
  /** Origin fetches, errors and fetch seconds by host label (the same labels as the Prometheus series). */
  readonly originTotals = new Map<string, { fetches: number; errors: number; seconds: number }>();
  private readonly hosts = new Set<string>();
  private readonly sources: MetricSources;
  private readonly requests: Counter<'route' | 'status' | 'cache'>;
  private readonly latency: Histogram<'route' | 'cache'>;
  private readonly stages: Histogram<'stage' | 'op'>;
  private readonly origins: Counter<'host' | 'outcome'>;
  private readonly bytesIn: Counter;
  private readonly bytesOut: Counter;
  private readonly purges: Counter<'selector'>;
  private readonly placeholders: Counter<'host' | 'outcome'>;

  constructor(sources: MetricSources, options: { defaultMetrics?: boolean } = {}) {
    this.sources = { ...sources };
    const registers = [this.registry];
    this.requests = new Counter({ name: 'imgrelay_requests_total', help: 'Image requests by URL form, status and X-Cache',
      labelNames: ['route', 'status', 'cache'], registers });
    this.latency = new Histogram({ name: 'imgrelay_request_duration_seconds', help: 'Image request latency by URL form and X-Cache',
      labelNames: ['route', 'cache'], buckets: LATENCY_BUCKETS, registers });
    this.stages = new Histogram({ name: 'imgrelay_stage_duration_seconds',
      help: 'Latency per stage: origin fetch, transform, persistent store', labelNames: ['stage', 'op'],
      buckets: LATENCY_BUCKETS, registers });
    this.origins = new Counter({ name: 'imgrelay_origin_fetches_total', help: 'Origin fetches by host and outcome',
      labelNames: ['host', 'outcome'], registers });
    this.bytesIn = new Counter({ name: 'imgrelay_origin_bytes_total', help: 'Bytes received from origins', registers });
    this.bytesOut = new Counter({ name: 'imgrelay_response_bytes_total', help: 'Image bytes sent to clients', registers });
    this.purges = new Counter({ name: 'imgrelay_purges_total', help: 'Purges by selector (log: applied from another instance)',
      labelNames: ['selector'], registers });
    this.placeholders = new Counter({ name: 'imgrelay_upstream_placeholders_total',
      help: 'Hotlink placeholders received, by host and outcome (retried with alternate headers, or refused with 502)',
      labelNames: ['host', 'outcome'], registers });
    this.registerGauges(this.sources, registers);
    if (options.defaultMetrics !== false) collectDefaultMetrics({ register: this.registry, prefix: 'imgrelay_' });
  }

  /** The transform pool, once the entry built it (its queue depth is read at each scrape). */
  track(transformer: { stats(): PoolStats & { timeouts?: number } }): void {
    this.sources.transformer = transformer;
  }

  request(sample: RequestSample): void {
    const cache = sample.cache ?? 'none';
    this.requests.inc({ route: sample.route, status: String(sample.status), cache });
    this.latency.observe({ route: sample.route, cache }, sample.seconds);
    this.tally.observe(sample.cache, sample.seconds);
    if (sample.bytesOut > 0) this.bytesOut.inc(sample.bytesOut);
    if (sample.cache && sample.cache in this.counts) this.counts[sample.cache as keyof typeof this.counts] += 1;
    else if (sample.status >= 400) this.counts.errors += 1;
  }

  stage(stage: Stage, seconds: number, op = ''): void {
    this.stages.observe({ stage, op }, seconds);
  }

  originFetch(host: string, bytesIn: number, outcome: string, seconds = 0): void {
    const label = this.hostLabel(host);
    this.origins.inc({ host: label, outcome });
    let totals = this.originTotals.get(label);
    if (!totals) this.originTotals.set(label, totals = { fetches: 0, errors: 0, seconds: 0 });
    totals.fetches += 1;
    totals.seconds += seconds;
    if (outcome === 'error') totals.errors += 1;
    if (bytesIn > 0) this.bytesIn.inc(bytesIn);
  }

  upstreamPlaceholder(host: string, outcome: 'retried' | 'refused'): void {
    this.placeholders.inc({ host: this.hostLabel(host), outcome });
  }

  private hostLabel(host: string): string {
    if (!this.hosts.has(host) && this.hosts.size < MAX_HOST_LABELS) this.hosts.add(host);
    return this.hosts.has(host) ? host : 'other';
  }

  purge(selector: string): void {
    this.purges.inc({ selector });
  }

  async render(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  private registerGauges(sources: MetricSources, registers: Registry[]): void {
    const gauge = (name: string, help: string, read: () => number | undefined) => new Gauge({
      name, help, registers,
      collect() {
        const value = read();
        if (value !== undefined) this.set(value);
      },
    });
    // Monotonic counts owned elsewhere become Prometheus counters: each scrape adds what grew since the last one.
    const counter = (name: string, help: string, read: () => number | undefined) => {
      let last = 0;
      return new Counter({
        name, help, registers,
        collect() {
          const value = read();
          if (value === undefined || value < last) return;
          this.inc(value - last);
          last = value;
        },
      });
    };
    gauge('imgrelay_transform_queue_depth', 'Transforms waiting for a pool slot', () => sources.transformer?.stats().queued);
    gauge('imgrelay_transform_running', 'Transforms running', () => sources.transformer?.stats().running);
    counter('imgrelay_transform_rejected_total', 'Transforms refused with 503 (queue full or waited too long)',
      () => sources.transformer?.stats().rejected);
    counter('imgrelay_transform_timeouts_total', 'Transforms that ran past TRANSFORM_TIMEOUT_S (504)',
      () => sources.transformer?.stats().timeouts);
    gauge('imgrelay_memory_bytes', 'Memory tier size (bodies plus overhead)', () => sources.memory.stats().bytes);
    gauge('imgrelay_memory_max_bytes', 'Memory tier budget (IMGRELAY_MEMORY_CACHE_MB)', () => sources.memory.stats().maxBytes);
    gauge('imgrelay_memory_entries', 'Memory tier entries', () => sources.memory.stats().entries);
    gauge('imgrelay_store_write_queue', 'Store writes waiting or in flight', () => sources.store?.writes.stats().queued);
    counter('imgrelay_store_writes_dropped_total', 'Store writes dropped (queue full)',
      () => sources.store?.writes.stats().dropped);
    counter('imgrelay_store_errors_total', 'Store calls failed (timeouts included)', () => sources.store?.guarded.errors);
    counter('imgrelay_purge_fenced_total', 'Saves refused by the purge fence (work that began before a purge covering it)',
      () => (sources.fence ? Object.values(sources.fence.stats().fenced).reduce((a, b) => a + b, 0) : undefined));
    gauge('imgrelay_inflight_bytes', 'Source bytes in flight (fetching, held for transforms, queued for writes)',
      () => sources.budget?.stats().usedBytes);
    // Its budget beside it, so alert rules divide by what this instance was given (deploy/prometheus/alerts.yml).
    gauge('imgrelay_inflight_limit_bytes', 'Budget of source bytes in flight (IMGRELAY_MAX_INFLIGHT_MB)',
      () => sources.budget?.stats().limitBytes);
    counter('imgrelay_inflight_refused_total', 'Misses and store writes refused over IMGRELAY_MAX_INFLIGHT_MB',
      () => sources.budget?.stats().refused);
    gauge('imgrelay_store_breaker_open', '1 while the store circuit breaker is open',
      () => (sources.store ? Number(sources.store.guarded.state() === 'open') : undefined));
  }
}
