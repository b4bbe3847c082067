/**
 * The Node entry: parses the environment once, wires the Node-specific parts (undici-guarded fetcher, sharp,
 * directory or S3 store, pino), serves the public app (and the admin app) and shuts down gracefully.
 * `startNode(config)` is what tests boot; running this file directly starts the service from `process.env`.
 */
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { getRequestListener } from '@hono/node-server';
import pino from 'pino';
import { createApp, type Lifecycle } from './app.js';
import { type Config, ConfigError, parseConfig } from './config.js';
import type { Logger } from './logger.js';
import { ImageService } from './images.js';
import { MemoryTier } from './cache/memory.js';
import { TieredCache } from './cache/tiered.js';
import { DEFAULT_SKEW_MS, PurgeFence } from './cache/purge-fence.js';
import { createGuardedFetcher } from './fetch/guarded-fetcher.js';
import { loadHeaderRules } from './fetch/header-rules.js';
import { createSourcePolicy } from './fetch/source-policy.js';
import { createSharpTransformer, type SharpTransformer } from './transform/sharp-transformer.js';
import { parseLegacyOptions } from './url/options.js';
import { createNodeStore, type NodeStore } from './cache/node-store.js';
import { nodeEtag, nodeSha256Hex } from './cache/node-etag.js';
import { HitPath, routeBound } from './http/hit-path.js';
import { withFastHits } from './http/node-hit.js';
import { type SocketStats, listenHardened } from './http/node-server.js';
import { PromMetrics } from './admin/metrics.js';
import { type RunningAdmin, startAdmin } from './admin/server.js';
import { instrumentStore } from './metrics.js';
import { ByteBudget } from './limits/byte-budget.js';
import { createIdleCollector } from './limits/idle-collect.js';
import { v8FullCollection } from './limits/v8-collect.js';

export interface RunningNode {
  url: string;
  port: number;
  config: Config;
  memory: MemoryTier;
  store?: NodeStore;
  transformer: SharpTransformer;
  /** Source bytes in flight (IMGRELAY_MAX_INFLIGHT_MB). */
  budget: ByteBudget;
  lifecycle: Lifecycle;
  /** The admin listener (`IMGRELAY_ADMIN_HOST:IMGRELAY_ADMIN_PORT`): purge, warm, stats, metrics. */
  adminUrl: string;
  admin: RunningAdmin;
  metrics: PromMetrics;
  /** The public listener's open connections and what its socket guards did (src/http/node-server.ts). */
  sockets(): SocketStats;
  /** Graceful stop: refuse new connections, finish in-flight requests (bounded), flush writes. */
  close(): Promise<void>;
}

export interface StartOptions {
  logger?: Logger;
}

export async function startNode(config: Config, options: StartOptions = {}): Promise<RunningNode> {
  const logger = options.logger ?? pino({ level: config.logLevel, base: { service: 'imgrelay' } });
  const core = await wireCore(config, logger);
  const { memory, store, fence, metrics, images, transformer, hits, legacyOptions } = core;
  const lifecycle: Lifecycle = { draining: false };
  const app = createApp({ config, images, logger, lifecycle, legacyOptions, hits });
  const listener = withFastHits(hits, getRequestListener(app.fetch, { hostname: config.host }), (hit, head, seconds) =>
    metrics.request({ route: hit.form, status: 200, cache: hit.state, seconds, bytesOut: head ? 0 : hit.body.byteLength }));
  // The admin first: its start reads the purge log (bounded), and until then this instance's store reads are misses,
  // so a balancer probing /readyz of an open listener would send it requests that fetch the origin again.
  const admin = await startAdmin({ config, logger, memory, store, fence, images, transformer, metrics, legacyOptions });
  core.purges.known = () => admin.purgeLog?.complete ?? true;
  const { server, stats: sockets } = await listenHardened(listener, config.sockets, config.port, config.host)
    .catch(async (error: unknown) => {
      await admin.close();
      throw error;
    });
  const port = (server.address() as AddressInfo).port;
  logger.info({ port, store: config.store, workers: core.workers }, 'imgrelay listening');
  return {
    url: `http://${config.host === '0.0.0.0' ? '127.0.0.1' : config.host}:${port}`, port, config, memory, store, transformer, lifecycle,
    budget: core.budget,
    adminUrl: admin.url, admin, metrics, sockets,
    close: async () => {
      lifecycle.draining = true;
      await admin.close();
      await closeServer(server, config.shutdownTimeoutMs);
      await Promise.race([Promise.allSettled([...core.background]), delay(config.shutdownTimeoutMs)]);
      await store?.close(config.shutdownTimeoutMs);
      await core.fetcher.close?.();
      core.idleCollector.stop();
    },
  };
}

/**
 * After misses moved this many bytes, and then none for a whole period, one full GC gives their dead buffers back
 * (docs/memory.md): a major GC of this heap takes tens of ms, worth it once per burst, never per request.
 */
const IDLE_COLLECT_MIN_BYTES = 32 * 1024 * 1024;
const IDLE_COLLECT_EVERY_MS = 5000;

/** The Node-specific parts behind the app: store, memory, metrics, guarded fetcher, sharp, image service. */
async function wireCore(config: Config, logger: Logger) {
  const background = new Set<Promise<unknown>>();
  const defer = (work: Promise<unknown>) => {
    background.add(work);
    void work.finally(() => background.delete(work));
  };
  const fence = new PurgeFence();
  // Until the admin's purge log was read whole, a purge made before this process started may be unknown to the fence.
  const purges = { known: (): boolean => false };
  // One budget for source bytes in flight: fetches, sources held for transforms, queued store writes (503 over it).
  const budget = new ByteBudget(config.maxInflightBytes);
  const idleCollector = createIdleCollector({ activity: () => budget.releasedBytes, collect: v8FullCollection(),
    minBytes: IDLE_COLLECT_MIN_BYTES, everyMs: IDLE_COLLECT_EVERY_MS });
  const store = await createNodeStore(config, logger, { fence, budget });
  const memory = new MemoryTier({ maxBytes: config.memoryCacheBytes, maxEntryBytes: config.memoryEntryMaxBytes,
    negativeTtlMs: config.negativeTtlS * 1000, fence });
  const metrics = new PromMetrics({ memory, store, fence, budget });
  const cache = new TieredCache({ memory, store: store && instrumentStore(store.guarded, metrics), writes: store?.writes,
    logger, defer, digest: nodeSha256Hex, fence, storeReady: () => purges.known(), legacyWindowMs: legacyWindowMs(config) });
  const headerRules = config.headerRulesFile
    ? loadHeaderRules(JSON.parse(readFileSync(config.headerRulesFile, 'utf8'))) : undefined;
  const fetcher = createGuardedFetcher(config, { logger, headerRules });
  const workers = config.workers || availableParallelism();
  const transformer = createSharpTransformer({ ...config, workers }, { logger });
  metrics.track(transformer);
  const images = new ImageService({ config, fetcher, transformer, cache, memory, policy: createSourcePolicy(config),
    metrics, etag: nodeEtag, digest: nodeSha256Hex, budget });
  const legacyOptions = config.legacyOptions ? parseLegacyOptions(config.legacyOptions) : undefined;
  return { background, store, memory, fence, purges, metrics, fetcher, workers, transformer, images, legacyOptions, budget,
    idleCollector,
    hits: new HitPath(memory, cache, { maxRoutes: routeBound(config.memoryCacheBytes) }) };
}

/**
 * Entries of older versions carry only `storedAt`, stamped when their load ENDED: a load begun before a purge may end
 * this much after it (fetch, a wait for a transform slot, the transform), plus the tolerated clock skew.
 */
function legacyWindowMs(config: Config): number {
  return config.upstreamTimeoutMs + config.queueTimeoutMs + config.transformTimeoutS * 1000 + DEFAULT_SKEW_MS;
}

/** Stops accepting, lets in-flight requests finish until the deadline, then cuts what is left. */
async function closeServer(server: Server, deadlineMs: number): Promise<void> {
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  // close() drops only the connections idle at that moment; keep-alive ones that finish a request later would
  // otherwise hold the process until their keep-alive timeout.
  const sweep = setInterval(() => server.closeIdleConnections(), 50);
  server.closeIdleConnections();
  const timer = setTimeout(() => server.closeAllConnections(), deadlineMs);
  await closed;
  clearInterval(sweep);
  clearTimeout(timer);
}

const delay = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms).unref());

/** Runs the service from the environment; invalid configuration is reported whole and exits 1. */
export async function main(env: Record<string, string | undefined> = process.env): Promise<void> {
  let config: Config;
  try {
    config = parseConfig(env);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    process.stderr.write(`${error.message}\n`);
    process.exit(1);
  }
  const running = await startNode(config);
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    process.stderr.write(`imgrelay: ${signal} received, draining\n`);
    running.close().then(() => process.exit(0), () => process.exit(1));
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  main().catch((error) => {
    process.stderr.write(`imgrelay failed to start: ${error instanceof Error ? error.stack : String(error)}\n`);
    process.exit(1);
  });
}
