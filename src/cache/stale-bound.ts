/**
 * The stale-if-error bound (IMGRELAY_STALE_IF_ERROR_S), shared by the Node image service (images.ts) and the edge's
 * forwarded transforms (http/forward.ts): the tiers themselves keep an expired entry as long as they can (the Cache
 * API for days), so the bound on serving it is applied to what the tiered cache answered, in one place.
 */
import { pastStaleIfError } from './freshness.js';
import type { CacheKey } from './keys.js';
import type { Loaded, Loader, TieredCache } from './tiered.js';

/**
 * An entry expired longer than STALE_IF_ERROR_S ago is not served stale: the request waits for the revalidation
 * (joining the one already running) and gets its answer, the origin's error included. Within the bound, STALE.
 */
export async function boundStale(cache: Pick<TieredCache, 'refresh'>, key: CacheKey, loader: Loader, loaded: Loaded,
  now: number, bounds: { staleIfErrorS: number }): Promise<Loaded> {
  if (loaded.state !== 'STALE' || !pastStaleIfError(loaded.entry.meta, now, bounds)) return loaded;
  return { entry: await cache.refresh(key, loader, loaded.entry), state: 'MISS' };
}
