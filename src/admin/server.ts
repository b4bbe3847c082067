/**
 * The admin side of a running node: the admin listener (a second Hono app on its own host and port), the purge
 * machinery (local tiers, purge log poller, CDN fan-out) and the stats. `startAdmin` is what src/node.ts calls.
 */
import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { getRequestListener } from '@hono/node-server';
import type { Config } from '../config.js';
import type { ImageService } from '../images.js';
import type { Logger } from '../logger.js';
import { type SocketStats, listenHardened } from '../http/node-server.js';
import type { MemoryTier } from '../cache/memory.js';
import type { NodeStore } from '../cache/node-store.js';
import type { PurgeFence } from '../cache/purge-fence.js';
import type { PoolStats } from '../transform/pool.js';
import type { RequestOptions } from '../url/options.js';
import { createAdminApp } from './app.js';
import { TokenChecker } from './auth.js';
import { CdnFanout, createCdnTargets } from './cdn.js';
import type { PromMetrics } from './metrics.js';
import { Purger } from './purge.js';
import { PurgeLog } from './purge-log.js';
import { collectStats } from './stats.js';
import { loadAdminAssets } from './assets.js';
import { History } from './history.js';
import { AdminJournal } from './journal.js';

export interface AdminDeps {
  config: Config;
  logger: Logger;
  memory: MemoryTier;
  store?: NodeStore;
  /** The cache's purge fence: purges (own and from the log) are recorded in it. */
  fence?: PurgeFence;
  images: ImageService;
  transformer?: { stats(): PoolStats };
  metrics: PromMetrics;
  legacyOptions?: RequestOptions;
}

export interface RunningAdmin {
  /** `http://<admin host>:<port>` */
  url: string;
  port: number;
  instanceId: string;
  purger: Purger;
  /** Undefined with IMGRELAY_STORE=none (nothing shared to log to). */
  purgeLog?: PurgeLog;
  /** The admin listener's open connections and what its socket guards did. */
  sockets(): SocketStats;
  /** Stops the poller and CDN retries, then the listener. */
  close(): Promise<void>;
}

export async function startAdmin(deps: AdminDeps): Promise<RunningAdmin> {
  const { config, logger } = deps;
  const instanceId = randomBytes(6).toString('hex');
  const cdn = new CdnFanout(createCdnTargets(config), { logger });
  // The log applies other instances' purges through the purger, which appends its own purges to the log.
  const purgeLog: PurgeLog | undefined = deps.store ? new PurgeLog({ store: deps.store.guarded, instanceId,
    pollMs: config.purgePollMs, logger, apply: (selectors, at, sweepMemory): Promise<number> => purger.applyFromLog(selectors, at, sweepMemory) })
    : undefined;
  const purger: Purger = new Purger({ memory: deps.memory, store: deps.store, log: purgeLog, cdn, metrics: deps.metrics, logger,
    pollMs: config.purgePollMs, storeTimeoutMs: config.storeTimeoutMs, fence: deps.fence, instanceId });
  purgeLog?.start();
  // Store reads are misses until the log was read whole (purge-log.ts `complete`): wait a bounded while for it.
  await purgeLog?.polledOnce(config.storeTimeoutMs);
  const startedAt = Date.now();
  const history = new History({ metrics: deps.metrics, memory: deps.memory, store: deps.store, transformer: deps.transformer,
    rss: () => process.memoryUsage.rss() });
  history.start(config.observe.statsSampleMs, (err) => logger.warn({ err }, 'admin: dashboard sample failed'));
  const app = createAdminApp({
    history: (since) => ({ intervalMs: config.observe.statsSampleMs, capacity: history.capacity, samples: history.samples(since) }),
    journal: new AdminJournal(), assets: loadAdminAssets(),
    tokens: new TokenChecker(config.adminTokens), purger, images: deps.images, metrics: deps.metrics, logger,
    legacyOptions: deps.legacyOptions, variants: config.variants,
    stats: () => collectStats({ instanceId, startedAt, memory: deps.memory, store: deps.store, transformer: deps.transformer,
      metrics: deps.metrics, log: purgeLog, fence: deps.fence, cdnTargets: cdn.targets.map((t) => t.name) }),
  });
  const listener = getRequestListener(app.fetch, { hostname: config.adminHost });
  const { server, stats: sockets } = await listenHardened(listener, config.sockets, config.adminPort, config.adminHost,
    { sameOrigin: true }).catch(async (error: unknown) => {
      history.stop();
      await purgeLog?.stop();
      throw error;
    });
  const port = (server.address() as AddressInfo).port;
  const host = config.adminHost.includes(':') ? `[${config.adminHost}]` : config.adminHost;
  logger.info({ port, host: config.adminHost, enabled: config.adminTokens.length > 0 }, 'imgrelay admin listening');
  return {
    url: `http://${host === '0.0.0.0' ? '127.0.0.1' : host}:${port}`, port, instanceId, purger, purgeLog, sockets,
    close: async () => {
      history.stop();
      await purger.close();
      await purgeLog?.stop();
      cdn.close();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}
