/**
 * Where a request becomes a miss, and what a miss costs its client. Portable (the limiter behind the gate,
 * miss-limit.ts, is wired by the Node entry only).
 *
 * The gate guards `Loader.load` of the entry a request asks for (images.ts), and nothing else:
 * - `load` runs only after memory and store both missed, so hits (HIT-MEMORY, HIT-STORE) are never charged;
 * - STALE answers revalidate through `Loader.revalidate`, which is not gated: the client got cached bytes;
 * - `load` runs once per single-flight, in the request that started the flight: a request that joins a miss already
 *   in flight costs nothing (the origin fetch and transform happen once either way), and is not refused for the
 *   leader's limit: withMissGate asks again on its own token;
 * - a variant's source load runs inside the variant's load: one miss is one token, fetch and transform together;
 * - failures remembered by the negative cache are answered before any load: not charged.
 */
import { RelayError } from '../errors.js';
import type { Loader } from '../cache/tiered.js';

/** Resolves when `client` may cause one more miss; throws 429 E_RATE_LIMITED (with Retry-After) when it may not. */
export type MissGate = (client: string | undefined) => Promise<void>;

/**
 * Runs `lookup` (the tiers, then the loader on a miss) with `loader` gated for `client`. A request that joined another
 * client's flight shares its outcome; when that client was over its limit, the 429 is not this request's: it asks
 * again (leading a flight of its own, or joining a new one). Bounded: a flood of refused leaders on one key can
 * still make a patient request see their 429 after JOINED_REFUSAL_RETRIES tries.
 */
export async function withMissGate<T>(loader: Loader, gate: MissGate | undefined, client: string | undefined,
  lookup: (gated: Loader) => Promise<T>, retries = JOINED_REFUSAL_RETRIES): Promise<T> {
  if (!gate) return lookup(loader);
  let refusedHere = false;
  const load = async (signal?: AbortSignal) => {
    try {
      await gate(client);
    } catch (error) {
      refusedHere = true;
      throw error;
    }
    return loader.load(signal);
  };
  try {
    return await lookup({ load, revalidate: (stale) => loader.revalidate(stale) });
  } catch (error) {
    const another = error instanceof RelayError && error.code === 'E_RATE_LIMITED' && !refusedHere;
    if (another && retries > 0) return withMissGate(loader, gate, client, lookup, retries - 1);
    throw error;
  }
}

export const JOINED_REFUSAL_RETRIES = 3;
