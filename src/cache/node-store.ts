/**
 * The persistent tier as the Node entry wires it: the configured store (directory or S3), guarded (deadline,
 * breaker, failures are misses) and fed by a bounded write-behind queue.
 */
import type { Config } from '../config.js';
import type { Logger } from '../logger.js';
import { createFsStore } from './fs-store.js';
import { guardStore } from './store-guard.js';
import { createWriteBehind } from './write-behind.js';
import type { Store } from './types.js';
import type { ByteBudget } from '../limits/byte-budget.js';

export interface NodeStore {
  /** The raw store (admin purges go through the guard too; this is for tests and stats). */
  raw: Store;
  guarded: ReturnType<typeof guardStore>;
  writes: ReturnType<typeof createWriteBehind>;
  /** Flushes queued writes (bounded), then releases the store. */
  close(deadlineMs: number): Promise<void>;
}

export async function createNodeStore(config: Config, logger: Logger, budget?: ByteBudget)
  : Promise<NodeStore | undefined> {
  const raw = await openStore(config, logger);
  if (!raw) return undefined;
  const guarded = guardStore(raw, { timeoutMs: config.storeTimeoutMs, logger });
  const writes = createWriteBehind(guarded, { maxQueue: config.writeQueue, concurrency: 4, logger, budget });
  return {
    raw, guarded, writes,
    close: async (deadlineMs) => {
      await writes.drain(deadlineMs);
      await raw.close?.();
    },
  };
}

async function openStore(config: Config, logger: Logger): Promise<Store | undefined> {
  switch (config.store) {
    case 'none':
      return undefined;
    case 'fs':
      return createFsStore({ dir: config.cacheDir, maxBytes: config.cacheMaxBytes, logger });
    case 's3': {
      // Loaded only when used: the AWS SDK is a sixth of the JS heap, which every major GC walks again (and RSS).
      const { createS3Store } = await import('./s3-store.js');
      return createS3Store({ ...config.s3, logger });
    }
  }
}
