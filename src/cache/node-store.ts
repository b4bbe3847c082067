/**
 * The persistent tier as the Node entry wires it: the configured store (directory or S3; S3 under its prefix, with
 * the bucket root still read for older entries), its purge index (markers written beside entries, and a one-time
 * background reindex of older entries), guarded (deadline, breaker, failures are misses) and fed by a bounded
 * write-behind queue.
 */
import type { Config } from '../config.js';
import type { Logger } from '../logger.js';
import { createFsStore } from './fs-store.js';
import { type LegacyRootStore, withLegacyRoot } from './legacy-root.js';
import { startBackgroundReindex } from './reindex.js';
import type { PurgeFence } from './purge-fence.js';
import { guardStore } from './store-guard.js';
import { withStoreIndex } from './store-index.js';
import { createWriteBehind } from './write-behind.js';
import { fenceCovers } from './fenced-store.js';
import type { Store, StoredEntry } from './types.js';
import type { ByteBudget } from '../limits/byte-budget.js';

export interface NodeStore {
  /** The raw store, without the purge index (admin purges go through the guard too; for tests and stats). */
  raw: Store;
  guarded: ReturnType<typeof guardStore>;
  writes: ReturnType<typeof createWriteBehind>;
  /** Flushes queued writes (bounded), then releases the store. */
  close(deadlineMs: number): Promise<void>;
}

/** What the store's write-behind answers to: the purge fence (admits) and the in-flight byte budget. */
export interface NodeStoreDeps {
  fence?: PurgeFence;
  budget?: ByteBudget;
}

export async function createNodeStore(config: Config, logger: Logger, { fence, budget }: NodeStoreDeps = {})
  : Promise<NodeStore | undefined> {
  const raw = await openStore(config, logger);
  if (!raw) return undefined;
  // Markers beside every entry (store-index.ts): purges by host, prefix and tag never walk the store.
  const indexed = withStoreIndex(raw);
  const guarded = guardStore(indexed, { timeoutMs: config.storeTimeoutMs, logger });
  const writes = createWriteBehind(guarded, { maxQueue: config.writeQueue, concurrency: 4, logger,
    admit: fence && ((entry) => admitsWrite(fence, entry)), budget });
  const reindex = startBackgroundReindex(raw, indexed.mark, logger, async (signal) => {
    // A bucket with no entries at its root stops paying a second GET per miss (legacy-root.ts).
    if ('probe' in raw && !(await (raw as LegacyRootStore).probe(signal))) {
      logger.info({}, 's3 store: no entries of older versions at the bucket root; reading under the prefix only');
    }
  });
  return {
    raw, guarded, writes,
    close: async (deadlineMs) => {
      await reindex.stop();
      await writes.drain(deadlineMs);
      await raw.close?.();
    },
  };
}

/** The configured store alone: no index writes, guard or queue (`imgrelay reindex` uses it). */
export async function openStore(config: Config, logger: Logger): Promise<Store | undefined> {
  switch (config.store) {
    case 'none':
      return undefined;
    case 'fs':
      return createFsStore({ dir: config.cacheDir, maxBytes: config.cacheMaxBytes, logger });
    case 's3': {
      // Loaded only when used: the AWS SDK is a sixth of the JS heap, which every major GC walks again (and RSS).
      const { createS3Client, createS3Store } = await import('./s3-store.js');
      if (!config.s3.legacyRoot) return createS3Store({ ...config.s3, logger });
      const client = createS3Client(config.s3);
      return withLegacyRoot(createS3Store({ ...config.s3, logger, client }),
        createS3Store({ ...config.s3, prefix: '', logger, client }), () => client.destroy());
    }
  }
}

/**
 * A queued write goes to the store unless a purge fences the work that produced it, or its bytes' work began so
 * close to a purge (within the clock skew) that every instance's read refuses it (fenced-store.ts): such a write
 * would only overwrite a good copy another instance wrote meanwhile, and make every instance fetch the source again.
 */
function admitsWrite(fence: PurgeFence, entry: StoredEntry): boolean {
  if (!fence.admits(entry, 'write')) return false;
  if (entry.meta.startedAt === undefined || !fenceCovers(fence, entry.meta, 0)) return true;
  fence.fenced('write');
  return false;
}
