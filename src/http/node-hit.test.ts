/**
 * The Node fast path's coalescing, on a real node:http server. The full path behind it is a stand-in that builds
 * the entry and then holds its own response open, as a leader whose client reads slowly does: the full path's own
 * behaviour is covered end to end in test/transform-api.test.ts.
 */
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { cacheKey, variantMaterial } from '../cache/keys.js';
import { MemoryTier } from '../cache/memory.js';
import { cachePolicy } from './cache-control.js';
import { HitPath } from './hit-path.js';
import { withFastHits } from './node-hit.js';

const SOURCE = 'http://origin.test/photo.jpg';
const URL_PATH = `/?url=${encodeURIComponent(SOURCE)}&w=800`;
const closers: Array<() => void> = [];
afterEach(() => closers.splice(0).forEach((close) => close()));

describe('identical requests waiting for the first one', () => {
  it('are answered as soon as its entry is built, not when its own response is written', async () => {
    const memory = new MemoryTier({ maxBytes: 1 << 20, maxEntryBytes: 1 << 20, negativeTtlMs: 1000 });
    const hits = new HitPath(memory);
    let leaderArrived!: () => void;
    const arrived = new Promise<void>((resolve) => { leaderArrived = resolve; });
    let held: ServerResponse | undefined;
    const fullPath = (_req: unknown, res: ServerResponse) => {
      held = res; // never answered while the waiters wait
      leaderArrived();
    };
    const server = createServer(withFastHits(hits, fullPath));
    let requests = 0;
    let allArrived!: () => void;
    const waitersArrived = new Promise<void>((resolve) => { allArrived = resolve; });
    // Counted after the fast path's own listener has run: each waiter is then queued behind the leader.
    server.on('request', () => void (++requests === 4 && allArrived()));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    closers.push(() => { held?.destroy(); server.closeAllConnections(); server.close(); });
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

    void fetch(base + URL_PATH).catch(() => undefined); // the leader: its answer never comes
    await arrived;
    const waiters = Promise.all([1, 2, 3].map(() => fetch(base + URL_PATH)));
    await waitersArrived;
    buildEntry(memory, hits);

    const answers = await waiters;
    expect(answers.map((r) => [r.status, r.headers.get('x-cache')])).toEqual(Array(3).fill([200, 'MISS']));
    expect((await answers[0].arrayBuffer()).byteLength).toBe(1234);
    expect(held?.headersSent).toBe(false); // the leader's own response is still unwritten
  });
});

/** What the full path does once its transform is done: the entry goes to memory and the URL is learned. */
function buildEntry(memory: MemoryTier, hits: HitPath): void {
  const body = new Uint8Array(1234);
  memory.set(cacheKey(SOURCE, variantMaterial('w=800', undefined)).memory, {
    body, source: SOURCE,
    meta: {
      contentType: 'image/jpeg', etag: '"e"', storedAt: 1, expiresAt: Date.now() + 60_000, size: body.byteLength,
      sourceUrl: SOURCE, tags: [],
    },
  });
  hits.remember(URL_PATH, {
    form: 'query', source: SOURCE, canonicalSpec: 'w=800', varyAccept: false, caching: cachePolicy('public, max-age=60', 86_400),
      headerOptions: {},
  });
}
