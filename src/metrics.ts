/**
 * The metrics surface the core reports to (requests, stage latencies, origin fetches, purges). Portable: no
 * prom-client here (the Workers build bundles this file); the Node entry hands in the prom-client implementation
 * from src/admin/metrics.ts, and everything defaults to `noopMetrics`.
 */
import type { EntryMeta, Store, StoredEntry } from './cache/types.js';

export type Stage = 'fetch' | 'transform' | 'store';

export interface RequestSample {
  /** The URL form (`legacy`, `query`, `path`) of a served image, or `error` for a failed request. */
  route: string;
  status: number;
  /** X-Cache value (HIT-MEMORY, HIT-STORE, MISS, STALE); undefined for errors. */
  cache?: string;
  seconds: number;
  /** Body bytes sent (0 for HEAD, 304 and errors). */
  bytesOut: number;
}

export interface Metrics {
  request(sample: RequestSample): void;
  /** How long one stage took (`store`: one read of the persistent tier). */
  stage(stage: Stage, seconds: number, op?: string): void;
  /** One fetch from an origin (bytes 0 for a 304 or a failure), and how long it took. */
  originFetch(host: string, bytesIn: number, outcome: 'ok' | 'not-modified' | 'error', seconds?: number): void;
  /** One admin purge, by selector kind (`urls`, `hosts`, `prefixes`, `tags`, `all`, `log` for applied log entries). */
  purge(selector: string): void;
  /** A hotlink placeholder from `host` (src/fetch/placeholder.ts): retried with alternate headers, or refused (502). */
  upstreamPlaceholder?(host: string, outcome: 'retried' | 'refused'): void;
}

const noop = () => {};
export const noopMetrics: Metrics = Object.freeze({ request: noop, stage: noop, originFetch: noop, purge: noop });

const seconds = (since: number) => (performance.now() - since) / 1000;

/** A Store whose reads and writes are timed as the `store` stage; everything else passes through. */
export function instrumentStore(store: Store, metrics: Metrics): Store {
  const timed = async <T>(op: string, run: () => Promise<T>): Promise<T> => {
    const started = performance.now();
    try {
      return await run();
    } finally {
      metrics.stage('store', seconds(started), op);
    }
  };
  return {
    kind: store.kind,
    get: (key, signal): Promise<StoredEntry | undefined> => timed('get', () => store.get(key, signal)),
    put: (key, entry, signal) => timed('put', () => store.put(key, entry, signal)),
    delete: (key, signal) => timed('delete', () => store.delete(key, signal)),
    deletePrefix: (prefix, signal) => store.deletePrefix(prefix, signal),
    list: (prefix, signal) => store.list(prefix, signal),
    head: store.head ? (key, signal): Promise<EntryMeta | undefined> => timed('head', () => store.head!(key, signal)) : undefined,
    close: store.close ? () => store.close!() : undefined,
  };
}
