/**
 * The Node entry: parses the environment once, wires the Node-specific parts (undici-guarded fetcher, sharp,
 * directory or S3 store, pino), serves the public app (and the admin app) and shuts down gracefully.
 * `startNode(config)` is what tests boot; running this file directly starts the service from `process.env`.
 */
import { randomUUID } from 'node:crypto';
import { realpathSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { getRequestListener } from '@hono/node-server';
import pino from 'pino';
import { createApp, type Lifecycle } from './app.js';
import { type Config, ConfigError } from './config.js';
import type { Logger } from './logger.js';
import { ImageService } from './images.js';
import { MemoryTier } from './cache/memory.js';
import { TieredCache } from './cache/tiered.js';
import { DEFAULT_SKEW_MS, PurgeFence } from './cache/purge-fence.js';
import { createGuardedFetcher } from './fetch/guarded-fetcher.js';
import { BUILTIN_HEADER_RULES } from './fetch/header-rules.js';
import { guardPlaceholders } from './fetch/placeholder.js';
import { differenceHash } from './transform/dhash.js';
import { createSourcePolicy } from './fetch/source-policy.js';
import { createSharpTransformer, type SharpTransformer } from './transform/sharp-transformer.js';
import { createNodeStore, type NodeStore } from './cache/node-store.js';
import { nodeEtag, nodeSha256Hex } from './cache/node-etag.js';
import { type FastHit, HitPath, routeBound } from './http/hit-path.js';
import { RequestLog } from './observe/request-log.js';
import { withFastHits } from './http/node-hit.js';
import { type SocketStats, listenHardened } from './http/node-server.js';
import { type DrainPhase, drainServer } from './http/drain.js';
import { type StartInputs, parseStartInputs, startInputsOf } from './start-inputs.js';
import { PromMetrics } from './admin/metrics.js';
import { type RunningAdmin, startAdmin } from './admin/server.js';
import { instrumentStore } from './metrics.js';
import { ByteBudget } from './limits/byte-budget.js';
import { createIdleCollector } from './limits/idle-collect.js';
import { v8FullCollection } from './limits/v8-collect.js';
import { MissLimiter } from './policy/miss-limit.js';

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
  /**
   * Graceful stop: /readyz fails for `drainDelayMs` while the listener still serves (SIGTERM passes
   * IMGRELAY_DRAIN_DELAY_MS; default 0, at once), then refuse new connections, finish in-flight requests (bounded),
   * flush writes (src/http/drain.ts).
   */
  close(drainDelayMs?: number): Promise<void>;
}

export interface StartOptions {
  logger?: Logger;
  /** The rules file's rules and the legacy options, already checked (main); read from `config` when absent. */
  inputs?: StartInputs;
}

export async function startNode(config: Config, options: StartOptions = {}): Promise<RunningNode> {
  const logger = options.logger ?? pino({ level: config.logLevel, base: { service: 'imgrelay' } });
  const core = await wireCore(config, logger,
    options.inputs ?? startInputsOf(config.headerRulesFile ?? '', config.legacyOptions ?? '', config.variants));
  const { memory, store, fence, metrics, images, transformer, hits, legacyOptions } = core;
  const lifecycle: Lifecycle = { draining: false };
  const requestLog = new RequestLog(logger, config.observe.logHitSample);
  const app = createApp({ config, images, logger, lifecycle, legacyOptions, hits, requestLog });
  const listener = withFastHits(hits, getRequestListener(app.fetch, { hostname: config.host }), (hit, head, seconds) => {
    const bytesOut = head ? 0 : hit.body.byteLength;
    metrics.request({ route: hit.form, status: 200, cache: hit.state, seconds, bytesOut });
    // A counter step per hit; the line (and its id) is built only for the sampled ones.
    if (requestLog.wants(hit.state)) logFastHit(requestLog, hit, bytesOut, seconds);
  });
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
    close: async (drainDelayMs = 0) => {
      const left = await drainPublic(server, lifecycle, logger, drainDelayMs, config.shutdownTimeoutMs, admin);
      await Promise.race([Promise.allSettled([...core.background]), delay(left())]);
      await store?.close(left());
      await core.fetcher.close?.();
      core.idleCollector.stop();
    },
  };
}

/**
 * Drains the public listener (the admin one keeps answering purges and stats through the delay) and returns what
 * is left of the one shutdown deadline, SHUTDOWN_TIMEOUT_MS from the listener's close: in-flight requests, deferred
 * work (revalidations) and queued store writes share it. Each used to get all of it in turn, so a stop could take
 * the delay plus three times the timeout, past the grace period the docs ask for (delay + timeout), and the
 * runtime's SIGKILL then lost the queued writes anyway.
 */
async function drainPublic(server: Server, lifecycle: Lifecycle, logger: Logger, delayMs: number, timeoutMs: number,
  admin: RunningAdmin): Promise<() => number> {
  let deadline = performance.now() + delayMs + timeoutMs;
  const onPhase = (phase: DrainPhase) => {
    if (phase === 'listener closed') deadline = performance.now() + timeoutMs;
    logger.info({ phase }, 'draining');
  };
  await Promise.all([drainServer(server, lifecycle, { delayMs, deadlineMs: timeoutMs, onPhase }),
    delay(delayMs).then(() => admin.close())]);
  return () => Math.max(0, deadline - performance.now());
}

/** A fast-path answer's line: it sent no X-Request-Id (its headers are shared), so the id is made for the line. */
function logFastHit(requestLog: RequestLog, hit: FastHit, bytes: number, seconds: number): void {
  requestLog.write({ requestId: randomUUID(), form: hit.form, host: new URL(hit.source).host, cache: hit.state,
    status: 200, bytes, ms: seconds * 1000 });
}

/**
 * After misses moved this many bytes, and then none for a whole period, one full GC gives their dead buffers back
 * (docs/memory.md): a major GC of this heap takes tens of ms, worth it once per burst, never per request.
 */
const IDLE_COLLECT_MIN_BYTES = 32 * 1024 * 1024;
const IDLE_COLLECT_EVERY_MS = 5000;

/** IMGRELAY_MISS_RATE: one limiter per instance (README "Per-client limits"); none when off. */
function missGate(config: Config) {
  const { rate, burst } = config.missLimit;
  return rate ? new MissLimiter({ rate, burst }).gate : undefined;
}

/** The Node-specific parts behind the app: store, memory, metrics, guarded fetcher, sharp, image service. */
async function wireCore(config: Config, logger: Logger, { headerRules, legacyOptions }: StartInputs) {
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
  const fetcher = guardPlaceholders(createGuardedFetcher(config, { logger, headerRules }), {
    rules: headerRules ?? BUILTIN_HEADER_RULES, dhash: differenceHash,
    onPlaceholder: (host, outcome) => metrics.upstreamPlaceholder(host, outcome) });
  const workers = config.workers || availableParallelism();
  const transformer = createSharpTransformer({ ...config, workers }, { logger });
  metrics.track(transformer);
  const images = new ImageService({ config, fetcher, transformer, cache, memory, policy: createSourcePolicy(config),
    metrics, etag: nodeEtag, digest: nodeSha256Hex, budget, missGate: missGate(config) });
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

const delay = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms).unref());

/** Runs the service from the environment; invalid configuration (rules file and legacy options too) is reported whole and exits 1. */
export async function main(env: Record<string, string | undefined> = process.env): Promise<void> {
  let start: ReturnType<typeof parseStartInputs>;
  try {
    start = parseStartInputs(env);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    process.stderr.write(`${error.message}\n`);
    process.exit(1);
  }
  const { config, ...inputs } = start;
  const running = await startNode(config, { inputs });
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    process.stderr.write(`imgrelay: ${signal} received, draining\n`);
    running.close(config.drain.delayMs).then(() => process.exit(0), () => process.exit(1));
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

/**
 * Run as the entry (`node dist/node/node.js`), not imported by a test. Real paths on both sides: through a symlinked
 * release directory (`/srv/imgrelay/current` → `releases/v2`) argv[1] keeps the link while the module URL does not,
 * and the service used to exit 0 without starting.
 */
function isEntry(): boolean {
  try {
    return !!process.argv[1] && realpathSync(process.argv[1]) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isEntry()) {
  main().catch((error) => {
    // A system error (a port in use, a cache directory not writable) is the operator's to fix: its message says
    // what and where; a stack trace is for the rest, which are bugs.
    const system = error instanceof Error && typeof (error as NodeJS.ErrnoException).syscall === 'string';
    process.stderr.write(`imgrelay failed to start: ${system ? error.message : error instanceof Error ? error.stack : String(error)}\n`);
    process.exit(1);
  });
}
