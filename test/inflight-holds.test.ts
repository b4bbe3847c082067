/**
 * What a miss holds against IMGRELAY_MAX_INFLIGHT_MB, in process (real origin on loopback, real sharp): a fetch
 * reserves its declared length before its body arrives and keeps it until its transform is done; a miss that does
 * not fit is refused at once with 503 E_OVERLOADED (Retry-After, no-store, never remembered), a hit is not.
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningNode } from '../src/node.js';
import { until } from './helpers/admin.js';
import { bootImgrelay, ZAKER, zakerAt } from './helpers/imgrelay.js';
import { type TestOrigin, startOrigin } from './helpers/origin.js';

const photo = readFileSync(new URL('./fixtures/photo-wood.jpg', import.meta.url)); // 525,520 bytes: two pass 1 MiB
const small = readFileSync(new URL('./fixtures/icc-odd.jpg', import.meta.url));

let origin: TestOrigin;
let node: RunningNode;
let releaseStalled: () => void = () => {};
beforeAll(async () => {
  origin = await startOrigin();
  origin.serve('/photo.jpg', photo, 'image/jpeg');
  origin.serve('/small.jpg', small, 'image/jpeg');
  // Declares the whole photo, sends half, then waits: its reservation is held while the body trickles.
  origin.route('/stalled.jpg', (_req, res) => {
    res.writeHead(200, { 'content-type': 'image/jpeg', 'content-length': photo.byteLength });
    res.write(photo.subarray(0, photo.byteLength / 2));
    releaseStalled = () => res.end(photo.subarray(photo.byteLength / 2));
  });
  node = await bootImgrelay({ ...zakerAt(origin.port), IMGRELAY_MAX_INFLIGHT_MB: '1',
    IMGRELAY_MAX_SOURCE_BYTES: String(1024 * 1024) });
}, 30_000);
afterAll(async () => {
  releaseStalled();
  await node?.close();
  await origin?.close();
});

const get = (path: string) => fetch(`${node.url}/?url=http://${ZAKER}${path}&w=120&output=webp`);

describe('IMGRELAY_MAX_INFLIGHT_MB holds', () => {
  it('refuses a second large miss with 503 while a first one holds its declared bytes, serves a hit, then recovers', async () => {
    const warm = await fetch(`${node.url}/?http://${ZAKER}/small.jpg`);
    expect(warm.status).toBe(200);
    const stalled = get('/stalled.jpg');
    await until(() => node.budget.usedBytes === photo.byteLength, 5_000);

    const refused = await get('/photo.jpg');
    expect(refused.status).toBe(503);
    expect(refused.headers.get('content-type')).toBe('application/problem+json');
    expect(refused.headers.get('cache-control')).toBe('no-store');
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
    expect((await refused.json()).code).toBe('E_OVERLOADED');
    expect(origin.hits('/photo.jpg')).toBe(1); // refused once its declared length was seen: no body read
    const metrics = await node.metrics.render();
    expect(metrics).toMatch(/^imgrelay_inflight_refused_total 1$/m);
    expect(metrics).toMatch(new RegExp(`^imgrelay_inflight_bytes ${photo.byteLength}$`, 'm'));
    const hit = await fetch(`${node.url}/?http://${ZAKER}/small.jpg`);
    expect([hit.status, hit.headers.get('x-cache')]).toEqual([200, 'HIT-MEMORY']);

    releaseStalled();
    expect((await stalled).status).toBe(200);
    expect(node.budget.usedBytes).toBe(0); // the transform let go: every byte is back
    const recovered = await get('/photo.jpg'); // the 503 was not remembered
    expect([recovered.status, recovered.headers.get('content-type')]).toEqual([200, 'image/webp']);
    expect(node.budget.usedBytes).toBe(0);
  });
});
