/**
 * What a purge waits for in the write-behind queue: the writes in flight when it starts, not an idle queue (under
 * steady misses the queue is never idle, and every purge waited its whole deadline).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../logger.js';
import { createFsStore } from './fs-store.js';
import type { Store, StoredEntry } from './types.js';
import { createWriteBehind } from './write-behind.js';

const entryOf = (fill: number): StoredEntry => ({
  body: new Uint8Array(64).fill(fill),
  meta: { contentType: 'image/png', etag: `"${fill}"`, storedAt: 1, expiresAt: 2, sourceUrl: 'https://a.example/p.png',
    size: 64, tags: [] },
});
const keyOf = (n: number) => `${n.toString(16).padStart(64, '0')}/source`;

const dirs: string[] = [];
afterEach(async () => {
  for (const dir of dirs.splice(0)) await rm(dir, { recursive: true, force: true });
});

/**
 * A real directory store whose writes wait until the test lets each one go: a stand-in for a slow store, so what is
 * in flight at a given moment is known exactly (no timing).
 */
async function gatedStore(): Promise<{ store: Store; release: () => void; started: () => number }> {
  const dir = await mkdtemp(join(tmpdir(), 'imgrelay-wb-unit-'));
  dirs.push(dir);
  const fs = createFsStore({ dir, maxBytes: 1 << 20, logger: silentLogger });
  const gates: Array<() => void> = [];
  let begun = 0;
  const store: Store = { ...fs, kind: fs.kind, get: (k, s) => fs.get(k, s), delete: (k, s) => fs.delete(k, s),
    deletePrefix: (p, s) => fs.deletePrefix(p, s), list: (p, s) => fs.list(p, s),
    put: async (key, entry, signal) => {
      begun += 1;
      await new Promise<void>((resolve) => gates.push(resolve));
      await fs.put(key, entry, signal);
    } };
  return { store, release: () => gates.shift()?.(), started: () => begun };
}

const tick = () => new Promise((resolve) => setTimeout(resolve, 20));

describe('write-behind settle', () => {
  it('resolves once the writes in flight at the call ended, while later writes keep the queue busy', async () => {
    const { store, release, started } = await gatedStore();
    const writes = createWriteBehind(store, { maxQueue: 10, concurrency: 1, logger: silentLogger });
    writes.enqueue(keyOf(1), entryOf(1)); // in flight, held
    let settled = false;
    const settling = writes.settle(60_000).then(() => { settled = true; });
    writes.enqueue(keyOf(2), entryOf(2)); // queued behind it: not waited for
    await tick();
    expect(settled).toBe(false);
    release(); // write 1 lands; write 2 starts and is held
    await settling;
    expect(settled).toBe(true);
    expect(started()).toBe(2);
    expect(writes.stats()).toMatchObject({ queued: 1, written: 1 });
    expect((await store.get(keyOf(1)))?.meta.etag).toBe('"1"');
    release();
    await writes.drain(10_000);
  });

  it('resolves at once with nothing in flight, and by its deadline when a write hangs', async () => {
    const { store, release } = await gatedStore();
    const writes = createWriteBehind(store, { maxQueue: 10, concurrency: 1, logger: silentLogger });
    await writes.settle(60_000);
    writes.enqueue(keyOf(3), entryOf(3));
    const before = Date.now();
    await writes.settle(50);
    expect(Date.now() - before).toBeLessThan(5_000);
    expect(writes.stats().queued).toBe(1);
    release();
    await writes.drain(10_000);
  });
});
