/** The memory tier holds to its byte budget when asked to hold more, evicting the least recently used. */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type TestOrigin, startOrigin } from './helpers/origin.js';
import { ZAKER, bootImgrelay, zakerAt } from './helpers/imgrelay.js';
import type { RunningNode } from '../src/node.js';

const MiB = 1024 * 1024;
const photo = readFileSync(new URL('./fixtures/photo-ladybird.jpg', import.meta.url)); // ~343 KiB

let origin: TestOrigin;
let relay: RunningNode;
beforeAll(async () => {
  origin = await startOrigin();
  for (let i = 0; i < 8; i++) origin.serve(`/p${i}.jpg`, photo, 'image/jpeg');
  relay = await bootImgrelay({ ...zakerAt(origin.port), IMGRELAY_MEMORY_CACHE_MB: '1' });
});
afterAll(async () => {
  await relay.close();
  await origin.close();
});

it('keeps the memory tier within its byte budget when filled with more than it holds', async () => {
  for (let i = 0; i < 8; i++) {
    const response = await fetch(`${relay.url}/?http://${ZAKER}/p${i}.jpg`);
    expect(response.status).toBe(200);
    await response.arrayBuffer();
  }
  const stats = relay.memory.stats();
  expect(stats.bytes).toBeLessThanOrEqual(1 * MiB);
  expect(stats.entries).toBeGreaterThan(0);
  expect(stats.entries).toBeLessThan(8);
  // The most recent survives, the oldest was evicted and goes back to the origin.
  expect((await fetch(`${relay.url}/?http://${ZAKER}/p7.jpg`)).headers.get('x-cache')).toBe('HIT-MEMORY');
  expect((await fetch(`${relay.url}/?http://${ZAKER}/p0.jpg`)).headers.get('x-cache')).toBe('MISS');
  expect(origin.hits('/p0.jpg')).toBe(2);
});
