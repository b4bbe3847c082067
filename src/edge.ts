/**
 * The edge service (DESIGN.md "Edge", docs/edge.md), wired by src/worker.ts: the same Hono app as the Node service,
 * built from the Worker's `env` (the same IMGRELAY_* names, as wrangler `vars`, parsed by the same parseConfig),
 * with the edge's own parts: a fetch-based source fetcher, the Images binding or a passthrough transformer, the
 * Cache API (and R2 when the `IMGRELAY_R2` binding exists) as the persistent tier behind a small in-isolate
 * memory tier, and transform requests run through the Images binding when it is bound (edge-images.ts), else —
 * and for what it cannot do — forwarded to the Node origin (IMGRELAY_ORIGIN_URL), or answered 501 when there is
 * none. With R2 bound, the Node admin's purges are followed through the purge log kept there (src/edge-purge.ts).
 *
 * Nothing here (or below) imports sharp, undici, pino, the AWS SDK or `node:` modules; test/worker-build.test.ts
 * enforces it on the bundle. This is not the Worker's main module because every export of that module is taken for
 * an entrypoint by the runtime (a constant or helper exported there stops the Worker from starting).
 */
import { createApp } from './app.js';
import { type Config, ConfigError, parseConfig } from './config.js';
import type { Logger } from './logger.js';
import { consoleLogger } from './edge-logger.js';
import { Background } from './edge-background.js';
import { ImageService } from './images.js';
import { ByteBudget } from './limits/byte-budget.js';
import { edgeInflightBytes } from './edge-inflight.js';
import { MemoryTier } from './cache/memory.js';
import { TieredCache } from './cache/tiered.js';
import type { Store, StoredEntry } from './cache/types.js';
import { type GuardedStore, guardStore } from './cache/store-guard.js';
import { type CacheLike, createCacheApiStore, layerStores } from './cache/cache-api-store.js';
import { withLegacyRoot } from './cache/legacy-root.js';
import { createR2Store, type R2BucketLike } from './cache/r2-store.js';
import { fenceStore } from './cache/fenced-store.js';
import { PurgeFence } from './cache/purge-fence.js';
import { withStoreIndex } from './cache/store-index.js';
import { FENCED_CACHE_MAX_TTL_S, PURGE_LOG_RETENTION_MS, PurgeFollower } from './edge-purge.js';
import { type EdgePurgeRouteDeps, handleEdgePurge, isEdgePurgeRequest } from './edge-purge-route.js';
import { PurgeLog } from './admin/purge-log.js';
import { createFetchFetcher } from './fetch/fetch-fetcher.js';
import { BUILTIN_HEADER_RULES } from './fetch/header-rules.js';
import { guardPlaceholders } from './fetch/placeholder.js';
import { edgeHeaderRules } from './edge-header-rules.js';
import { createImagesTransformer, edgeImagesBlocker, type ImagesBindingLike, optionName } from './edge-images.js';
import { createSourcePolicy } from './fetch/source-policy.js';
import { viaNamesImgrelay } from './fetch/loop-guard.js';
import { refuseLoop, refuseTransform } from './edge-refusals.js';
import { createForwarder, type Forwarder, transformRequestOf } from './http/forward.js';
import { problemResponse } from './http/problem.js';
import { type SignaturePolicy, signaturePolicy } from './policy/signature.js';
import { createPassthroughTransformer } from './transform/passthrough.js';
import type { RequestOptions } from './url/options.js';
import { parseLegacyUnderRules } from './policy/variants.js';

/** The Worker's bindings: IMGRELAY_* vars (strings; numbers and booleans are accepted) and the optional R2 bucket. */
export interface WorkerEnv {
  IMGRELAY_R2?: R2BucketLike;
  /** Cloudflare's Images binding (`[images] binding = "IMAGES"`): transforms run at the edge (edge-images.ts). */
  IMAGES?: ImagesBindingLike;
  [name: string]: unknown;
}

export interface EdgeOptions {
  /** Defaults to `caches.default`; `null` leaves the Cache API out (R2 alone, or memory only). */
  cache?: CacheLike | null;
  logger?: Logger;
  fetch?: typeof fetch;
}

export interface Edge {
  config: Config;
  /** Where entries are kept besides memory: `cache-api`, `r2`, `cache-api+r2` or `none`. */
  storeKind: string;
  memory: MemoryTier;
  /** Source bytes in flight in this isolate (edge-inflight.ts). */
  budget: ByteBudget;
  /** Reads the Node admin's purge log from R2 (present when IMGRELAY_R2 is bound and the store is not `none`). */
  purges?: PurgeFollower;
  handle(request: Request): Promise<Response>;
  /** Resolves once every background write and revalidation started so far, and what they started, has ended. */
  settled(): Promise<void>;
}

/** The edge memory tier when IMGRELAY_MEMORY_CACHE_MB is not set, and its ceiling: an isolate has 128 MB in all. */
export const EDGE_MEMORY_DEFAULT_BYTES = 16 * 1024 * 1024;
export const EDGE_MEMORY_MAX_BYTES = 64 * 1024 * 1024;

/** Builds the edge service from the Worker's env; throws ConfigError (every invalid variable) like the Node entry. */
export function createEdge(env: WorkerEnv, options: EdgeOptions = {}): Edge {
  const vars = imgrelayVars(env);
  const config = parseConfig(vars);
  const logger = options.logger ?? consoleLogger(config.logLevel);
  const background = new Background();
  const follows = followsPurges(config, env);
  // The same fence as on Node (purge-fence.ts), fed by the purge log: it fences this isolate's loads by ticket.
  const fence = follows ? new PurgeFence({ retentionMs: PURGE_LOG_RETENTION_MS }) : undefined;
  const memory = edgeMemory(config, vars);
  const cacheApi = options.cache === undefined ? defaultCache() : options.cache ?? undefined;
  let purges: PurgeFollower | undefined;
  const fenced = fence && { fence, ready: () => purges?.complete ?? false };
  const { store, r2 } = edgeStore(config, env, cacheApi, logger, background.track, fenced);
  purges = fence && purgeFollower(config, env.IMGRELAY_R2!, { fence, memory, logger, background, r2 });
  const budget = new ByteBudget(edgeInflightBytes(config)); // never unbounded in an isolate (edge-inflight.ts)
  const writes = store && edgeWrites(store, fence, background.track, budget);
  const cache = new TieredCache({ memory, store, writes, logger, defer: background.track, fence });
  const policy = createSourcePolicy(config, logger);
  const headerRules = edgeHeaderRules(config);
  // No decoder at the edge: exact placeholder entries are checked, perceptual ones only by the Node origin.
  const fetcher = guardPlaceholders(createFetchFetcher(config, { logger, headerRules, fetch: options.fetch }),
    { rules: headerRules ?? BUILTIN_HEADER_RULES });
  const transformer = env.IMAGES ? createImagesTransformer(env.IMAGES, config) : createPassthroughTransformer();
  const images = new ImageService({ config, fetcher, transformer, cache, memory, policy, budget });
  // The app relays legacy URLs untouched; legacy options are a transform, so only the forwarder applies them.
  const app = createApp({ config, images, logger, lifecycle: { draining: false } });
  const forwarder = config.originUrl
    ? createForwarder({ config, originUrl: config.originUrl, cache, memory, policy, logger, fetch: options.fetch,
      budget })
    : undefined;
  const legacyOptions = forwarder && config.legacyOptions ? edgeLegacyOptions(config) : undefined;
  if (!forwarder && config.legacyOptions) logger.warn({}, 'IMGRELAY_LEGACY_OPTIONS ignored: it needs IMGRELAY_ORIGIN_URL');
  const purgeRoute = { tokens: config.edgePurgeTokens, purges, pollMs: config.purgePollMs, legacyOptions };
  const signatures = signaturePolicy(config.signing);
  const route = { app, forwarder, legacyOptions, policy, config, purges, purgeRoute, signatures, atEdge: !!env.IMAGES };
  return {
    config, memory, budget, purges, storeKind: store?.kind ?? 'none',
    handle: (request) => handle(route, request),
    settled: () => background.settled(),
  };
}

/**
 * Write-behind through ctx.waitUntil: the response never waits for the Cache API or R2. A write keeps its bytes
 * alive until it ends, so it holds them in the in-flight budget as Node's queue does; one that does not fit is dropped.
 */
function edgeWrites(store: Store, fence: PurgeFence | undefined, defer: (work: Promise<unknown>) => void,
  budget: ByteBudget) {
  return {
    enqueue: (key: string, entry: StoredEntry) => {
      // Checked again as the write starts, like Node's write queue: a purge recorded since the load's ticket.
      if (fence && !fence.admits(entry, 'write')) return true;
      const bytes = entry.body.byteLength;
      if (!budget.tryTake(bytes)) return false;
      defer(store.put(key, entry).finally(() => budget.give(bytes)));
      return true;
    },
  };
}

interface Route {
  app: { fetch(request: Request): Response | Promise<Response> };
  forwarder?: Forwarder;
  legacyOptions?: RequestOptions;
  policy: { check(url: URL): void };
  config: Config;
  purges?: PurgeFollower;
  purgeRoute: EdgePurgeRouteDeps;
  /** Checked here too: the forwarder and the edge cache serve transforms without passing through the image route. */
  signatures: SignaturePolicy;
  /** The Images binding is bound: what it can do runs here, through the app (edge-images.ts). */
  atEdge: boolean;
}

async function handle(route: Route, request: Request): Promise<Response> {
  await route.purges?.beforeRequest();
  if (isEdgePurgeRequest(request)) return handleEdgePurge(request, route.purgeRoute);
  const image = transformRequestOf(request, route.legacyOptions, route.config.variants.presets);
  if (!image) return route.app.fetch(request);
  // The forwarder does not pass through the image route, which refuses loops for everything else (loop-guard.ts).
  if (viaNamesImgrelay(request.headers.get('via'))) return refuseLoop(route.config);
  const refused = await route.signatures.check(image).then(() => undefined,
    (error: unknown) => problemResponse(error, { negativeTtlS: route.config.negativeTtlS }));
  if (refused) return refused;
  // With the Images binding, what it can do runs here through the app (edge-images.ts); the rest is forwarded.
  const blocker = route.atEdge ? edgeImagesBlocker(image.options.spec) : undefined;
  if (route.atEdge && !blocker && image.form !== 'legacy') return route.app.fetch(request);
  if (!route.forwarder) return refuseTransform(route.config, route.policy, image, blocker && optionName(blocker, image.form));
  const response = await route.forwarder.handle(request, image);
  // An old article must not break because the origin is down or overloaded: relay the original bytes instead.
  if (image.form === 'legacy' && response.status >= 500) return route.app.fetch(request);
  return response;
}

/** Invalid legacy options are a configuration error (reported like the others), not a failure of every request. */
function edgeLegacyOptions({ legacyOptions: raw = '', variants }: Config): RequestOptions {
  try {
    return parseLegacyUnderRules(raw, variants); // presets-only refusing them is a configuration error too, as on Node
  } catch (error) {
    throw new ConfigError([`IMGRELAY_LEGACY_OPTIONS=${JSON.stringify(raw)}: ${(error as Error).message}`]);
  }
}

/** IMGRELAY_* vars as strings (wrangler `vars` may be numbers or booleans); bindings and other names are skipped. */
export function imgrelayVars(env: WorkerEnv): Record<string, string> {
  const vars: Record<string, string> = {};
  for (const [name, value] of Object.entries(env)) {
    if (!name.startsWith('IMGRELAY_')) continue;
    if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') vars[name] = String(value);
  }
  return vars;
}

/** A small LRU per isolate: the default budget is a Node server's, far too big for an isolate's 128 MB. */
function edgeMemory(config: Config, vars: Record<string, string>): MemoryTier {
  const maxBytes = vars.IMGRELAY_MEMORY_CACHE_MB === undefined ? EDGE_MEMORY_DEFAULT_BYTES
    : Math.min(config.memoryCacheBytes, EDGE_MEMORY_MAX_BYTES);
  const options = { maxBytes, maxEntryBytes: Math.min(config.memoryEntryMaxBytes, Math.ceil(maxBytes / 4)),
    negativeTtlMs: config.negativeTtlS * 1000 };
  return new MemoryTier(options);
}

/** The purge log lives in the store the edge shares with the Node service: R2 (docs/edge.md "Purges at the edge"). */
function followsPurges(config: Config, env: WorkerEnv): boolean {
  return config.store !== 'none' && env.IMGRELAY_R2 !== undefined;
}

/**
 * For entries without `startedAt` (written by older versions, which dated entries only when a load ended): how long
 * after a purge such an entry may still come from work that began before it. The longest a load runs (a source
 * fetch, or a transform forwarded to the origin: forward.ts's deadline) plus a second of clock skew. Entries with
 * `startedAt` need only the fence's clock skew (fenced-store.ts).
 */
function legacyFenceWindowMs(config: Config): number {
  const load = config.upstreamTimeoutMs + (config.originUrl ? config.transformTimeoutS * 1000 : 0);
  return load + 1000;
}

interface FollowerParts {
  fence: PurgeFence;
  memory: MemoryTier;
  logger: Logger;
  background: Background;
  /** The R2 entries (indexed), which purges given to the route delete. */
  r2?: { guarded: GuardedStore; raw: Store };
}

/** Reads the purge log from R2, and writes to it for the purge route (under a random instance id per isolate). */
function purgeFollower(config: Config, bucket: R2BucketLike, parts: FollowerParts): PurgeFollower {
  const { fence, memory, logger, background } = parts;
  const log = createR2Store(bucket, { prefix: config.s3.prefix });
  const writer = new PurgeLog({ store: guardStore(log, { timeoutMs: config.storeTimeoutMs, logger }),
    instanceId: `edge${crypto.randomUUID().slice(0, 8)}`, pollMs: config.purgePollMs, apply: async () => 0, logger });
  // This isolate's writes already under way land before the purge deletes from R2 (as Node drains its queue).
  const writes = { settle: (deadlineMs: number) => background.settled(deadlineMs) };
  const store = parts.r2 && { ...parts.r2, writes };
  return new PurgeFollower({ log, writer, fence, memory, store, pollMs: config.purgePollMs,
    timeoutMs: pollTimeoutMs(config), logger, defer: background.track });
}

/** A poll lists the log and reads up to 40 entries, 8 at a time: R2 answers those in milliseconds when healthy. */
const pollTimeoutMs = (config: Config) => config.storeTimeoutMs * 2;

/**
 * Cache API first, then R2 when bound; each layer guarded on its own (a failing layer is a miss). `r2` is the R2
 * layer alone, for the purge route's deletes.
 */
function edgeStore(config: Config, env: WorkerEnv, cache: CacheLike | undefined, logger: Logger,
  defer: (work: Promise<unknown>) => void, fenced: { fence: PurgeFence; ready: () => boolean } | undefined)
  : { store?: Store; r2?: { guarded: GuardedStore; raw: Store } } {
  if (config.store === 'none') return {};
  // Each layer behind the purge fence (when following the log), then guarded: a failing layer is a miss. Entries
  // begun before what the fence remembers are misses too (fenced-store.ts `horizonMs`: a late write of a purge
  // the fence has forgotten); the Cache API's own ceiling already keeps it inside that horizon.
  const fencing = fenced && { ready: fenced.ready, legacyWindowMs: legacyFenceWindowMs(config), defer,
    horizonMs: FENCED_CACHE_MAX_TTL_S * 1000 };
  const guard = (store: Store) => guardStore(fencing ? fenceStore(store, fenced.fence, fencing) : store,
    { timeoutMs: config.storeTimeoutMs, logger });
  const maxTtlS = fenced ? FENCED_CACHE_MAX_TTL_S : undefined;
  const front = cache && guard(createCacheApiStore(cache, { maxTtlS }));
  const raw = env.IMGRELAY_R2 && withStoreIndex(r2Store(env.IMGRELAY_R2, config));
  const back = raw && guard(raw);
  // Purges find and delete through the store itself, not the fence: index markers are read for their meta, and a
  // marker the fence would hide (its source purged before, or older than the horizon) must still lead to entries.
  const r2 = raw && { guarded: guardStore(raw, { timeoutMs: config.storeTimeoutMs, logger }), raw };
  return { store: front && back ? layerStores(front, back, defer) : front ?? back, r2 };
}

/** The same prefix (and legacy-root reads) as the Node S3 store, so both share one bucket layout. */
function r2Store(bucket: R2BucketLike, config: Config): Store {
  const current = createR2Store(bucket, { prefix: config.s3.prefix });
  return config.s3.legacyRoot ? withLegacyRoot(current, createR2Store(bucket)) : current;
}

function defaultCache(): CacheLike | undefined {
  return (globalThis as { caches?: { default?: CacheLike } }).caches?.default;
}
