/**
 * Where the gate charges, on the real tiered cache and memory tier (no store): a miss's leader pays one token, a
 * request that joins its flight pays nothing, hits and stale answers pay nothing, and a waiter that joined a refused
 * client's flight is not refused for it.
 */
import { describe, expect, it } from 'vitest';
import { RelayError } from '../errors.js';
import { silentLogger } from '../logger.js';
import { cacheKey, SOURCE_VARIANT } from '../cache/keys.js';
import { MemoryTier } from '../cache/memory.js';
import { type Loader, TieredCache } from '../cache/tiered.js';
import type { StoredEntry } from '../cache/types.js';
import { type MissGate, withMissGate } from './miss-gate.js';

const SOURCE = 'https://a.example/p.png';

function entry(expiresAt = Date.now() + 60_000): StoredEntry {
  return { body: new Uint8Array(16), meta: { contentType: 'image/png', etag: '"e"', storedAt: Date.now(), expiresAt,
    sourceUrl: SOURCE, size: 16, tags: [] } };
}

/** A gate that counts who was charged and refuses the clients in `refuse` (after `delay`, if given). */
function countingGate(refuse: Set<string> = new Set(), delay?: Promise<void>) {
  const charged: string[] = [];
  const gate: MissGate = async (client) => {
    charged.push(client ?? '-');
    await delay;
    if (refuse.has(client ?? '')) throw new RelayError('E_RATE_LIMITED', 'over', { retryAfter: 7 });
  };
  return { gate, charged };
}

function setup() {
  const memory = new MemoryTier({ maxBytes: 1 << 20, maxEntryBytes: 1 << 20, negativeTtlMs: 1000 });
  const cache = new TieredCache({ memory, logger: silentLogger, defer: (work) => void work.catch(() => undefined) });
  return { memory, cache, key: cacheKey(SOURCE, SOURCE_VARIANT) };
}

describe('miss gate', () => {
  it('charges the miss once, to the request that leads it; a joined waiter and later hits are free', async () => {
    const { cache, key } = setup();
    let release!: () => void;
    const held = new Promise<void>((resolve) => { release = resolve; });
    let loads = 0;
    const loader: Loader = { load: async () => { loads++; await held; return entry(); }, revalidate: async (s) => s };
    const { gate, charged } = countingGate();
    const get = (client: string) => withMissGate(loader, gate, client, (gated) => cache.get(key, gated));
    const leader = get('a');
    await Promise.resolve();
    const waiter = get('b');
    release();
    expect((await leader).state).toBe('MISS');
    expect((await waiter).state).toBe('MISS'); // coalesced: built now, for both
    expect((await get('c')).state).toBe('HIT-MEMORY');
    expect(loads).toBe(1);
    expect(charged).toEqual(['a']);
  });

  it('a stale entry is served while revalidating without charging (the revalidation is not gated)', async () => {
    const { cache, key, memory } = setup();
    memory.set(key.memory, { ...entry(Date.now() - 1000), source: key.source });
    let revalidations = 0;
    const loader: Loader = { load: async () => entry(), revalidate: async () => { revalidations++; return entry(); } };
    const { gate, charged } = countingGate(new Set(['a']));
    expect((await withMissGate(loader, gate, 'a', (gated) => cache.get(key, gated))).state).toBe('STALE');
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(revalidations).toBe(1);
    expect(charged).toEqual([]);
  });

  it('a waiter that joined a refused client\'s flight is not refused: it loads on its own token', async () => {
    const { cache, key } = setup();
    let decide!: () => void;
    const decided = new Promise<void>((resolve) => { decide = resolve; });
    let loads = 0;
    const loader: Loader = { load: async () => { loads++; return entry(); }, revalidate: async (s) => s };
    const { gate, charged } = countingGate(new Set(['attacker']), decided);
    const get = (client: string) => withMissGate(loader, gate, client, (gated) => cache.get(key, gated));
    const attacker = get('attacker').then(() => undefined, (error: unknown) => error as RelayError);
    await Promise.resolve();
    const victim = get('victim');
    await new Promise((resolve) => setTimeout(resolve, 5));
    expect(charged).toEqual(['attacker']); // the victim joined the attacker's flight: not charged yet
    decide();
    expect((await attacker)?.code).toBe('E_RATE_LIMITED');
    expect((await victim).entry.body.byteLength).toBe(16);
    expect(loads).toBe(1);
    expect(charged).toEqual(['attacker', 'victim']);
  });

  it('a refused client that joined its own refused flight gets its 429 without endless retries', async () => {
    const { cache, key } = setup();
    const loader: Loader = { load: async () => entry(), revalidate: async (s) => s };
    const { gate, charged } = countingGate(new Set(['attacker', 'other']));
    const error = await withMissGate(loader, gate, 'other', (gated) => cache.get(key, gated))
      .then(() => undefined, (e: unknown) => e as RelayError);
    expect(error?.retryAfter).toBe(7);
    expect(charged).toEqual(['other']);
  });

  it('without a gate (limits off) the loader is used as it is', async () => {
    const { cache, key } = setup();
    const loader: Loader = { load: async () => entry(), revalidate: async (s) => s };
    expect((await withMissGate(loader, undefined, 'a', (gated) => cache.get(key, gated))).state).toBe('MISS');
  });
});
