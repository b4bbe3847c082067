/**
 * Bounded cost, against the real service (real sockets, real sharp, a loopback origin): what is refused before any
 * work (400 before the fetch, 422 before a pool slot), the queue timeout, a job dropped when its client left, the
 * transform timeout (504, never remembered as an invalid image), and the heavy lane. Each attack shows the resource
 * it protects staying bounded: origin fetches made, pool slots taken, jobs run (the CPU time of accepted jobs is the
 * bench's cost matrix to show: speed is not asserted here).
 */
import { request as httpRequest } from 'node:http';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningNode } from '../src/node.js';
import { until } from './helpers/admin.js';
import { ZAKER, bootImgrelay, bytes, zakerAt } from './helpers/imgrelay.js';
import { fixture } from './helpers/images.js';
import { type TestOrigin, startOrigin } from './helpers/origin.js';

let origin: TestOrigin;
const started: RunningNode[] = [];
const boot = async (env: Record<string, string> = {}) => {
  const node = await bootImgrelay({ ...zakerAt(origin.port), ...env });
  started.push(node);
  return node;
};

/** A 1,000-frame animated GIF of one-pixel frames (alternating colours, so no encoder merges them): ~10 KB. */
async function thousandFrameGif(): Promise<Uint8Array> {
  const frames = 1000;
  const strip = Buffer.alloc(frames * 3);
  for (let f = 0; f < frames; f++) strip.set(f % 2 ? [255, 0, 0] : [0, 0, 255], f * 3);
  return new Uint8Array(await sharp(strip, { raw: { width: 1, height: frames, channels: 3, pageHeight: 1 } })
    .gif({ loop: 0, delay: Array(frames).fill(20) }).toBuffer());
}

beforeAll(async () => {
  origin = await startOrigin();
  origin.serve('/1x1.png', await sharp({ create: { width: 1, height: 1, channels: 3, background: '#808080' } }).png().toBuffer(), 'image/png');
  origin.serve('/frames.gif', await thousandFrameGif(), 'image/gif');
  origin.serve('/photo.jpg', fixture('photo-wood.jpg'), 'image/jpeg');
});
afterAll(async () => {
  await Promise.all(started.map((node) => node.close()));
  await origin.close();
});

const src = (path: string) => encodeURIComponent(`http://${ZAKER}${path}`);
const problem = async (response: Response) => ({ status: response.status, cacheControl: response.headers.get('cache-control'),
  retryAfter: response.headers.get('retry-after'), ...(await response.json() as { code: string; detail: string }) });

describe('refused before any work, with the limit named (default budget)', () => {
  let relay: RunningNode;
  beforeAll(async () => { relay = await boot(); });

  it('the issue\'s 32 s request (1×1 PNG, 4096² fill, blur 999.1) → 400 before the source is even fetched', async () => {
    const before = origin.hits('/1x1.png');
    const jobs = relay.transformer.stats();
    const response = await fetch(`${relay.url}/?url=${src('/1x1.png')}&w=4096&h=4096&fit=fill&blur=999.1`);
    const body = await problem(response);
    expect(body).toMatchObject({ status: 400, code: 'E_BAD_REQUEST', cacheControl: 'no-store' });
    expect(body.detail).toContain('over the limit of 250');
    // Decided from the options alone: no origin fetch (so no header read either), no pool run.
    expect(origin.hits('/1x1.png')).toBe(before);
    const after = relay.transformer.stats();
    expect([after.completed, after.rejected]).toEqual([jobs.completed, jobs.rejected]);
  });

  it('blur 200 at 4096² fill → 422 naming IMGRELAY_TRANSFORM_BUDGET_MS, and it took no pool slot', async () => {
    const before = relay.transformer.stats();
    const response = await fetch(`${relay.url}/?url=${src('/1x1.png')}&w=4096&h=4096&fit=fill&blur=200`);
    const body = await problem(response);
    expect(body).toMatchObject({ status: 422, code: 'E_IMAGE_INVALID' });
    expect(body.detail).toMatch(/output 4096x4096, blur 200\), over the limit of 1500 ms \(IMGRELAY_TRANSFORM_BUDGET_MS\)/);
    const after = relay.transformer.stats();
    // Refused from the header: never queued, never run.
    expect([after.completed, after.rejected, after.running, after.queued]).toEqual([before.completed, before.rejected, 0, 0]);
    expect(after.overBudget).toBe(before.overBudget + 1);
  });

  it('1,000 one-pixel frames at w=400&n=-1 (an 11 s slot before) → planned and served as a still GIF, in one job', async () => {
    const before = relay.transformer.stats();
    const response = await fetch(`${relay.url}/?url=${src('/frames.gif')}&w=400&n=-1`);
    expect(response.status).toBe(200);
    const meta = await sharp(await bytes(response), { pages: -1 }).metadata();
    expect(meta.pages ?? 1).toBe(1);
    expect(meta.width).toBe(400);
    const after = relay.transformer.stats();
    expect([after.completed, after.timeouts, after.overBudget]).toEqual([before.completed + 1, before.timeouts, before.overBudget]);
  });

  it('the same animation small enough to afford keeps every frame', async () => {
    const response = await fetch(`${relay.url}/?url=${src('/frames.gif')}&w=16&n=-1`);
    expect(response.status).toBe(200);
    const meta = await sharp(await bytes(response), { pages: -1 }).metadata();
    expect(meta.pages).toBeGreaterThan(100);
  });
});

/**
 * A job slow by construction, accepted under a raised budget: three 4096² frames (50 MP of output, within the default
 * MAX_ANIMATION_PIXELS), each blurred at σ 250 and encoded to WebP. The calibrated cost model puts it at ~26 s of CPU
 * on the reference machine, against a 2 s TRANSFORM_TIMEOUT_S: a core would have to be ~13× faster for it to finish
 * in time, so it surely holds its slot until libvips notices the timeout (~4 s here) and ends in 504.
 * `variant` (the quality) makes distinct cache keys, so that single-flight does not merge them.
 */
const HEAVY = (variant: number) =>
  `/?url=${src('/frames.gif')}&w=4096&h=4096&fit=fill&n=3&blur=250&output=webp&q=${variant}`;
const SLOW_ENV = { IMGRELAY_TRANSFORM_TIMEOUT_S: '2', IMGRELAY_TRANSFORM_BUDGET_MS: '600000',
  // Makes one job over even that budget: AVIF at effort 9 is ~90 s of CPU per MP (~1,500 s at 4096²).
  IMGRELAY_AVIF_EFFORT: '9' };
/** Over SLOW_ENV's budget at every fallback (a still, one frame): refused from its header. */
const OVER_BUDGET = `/?url=${src('/1x1.png')}&w=4096&h=4096&fit=fill&output=avif`;

describe('deadlines that free the slot (WORKERS=1)', () => {
  let relay: RunningNode;
  beforeAll(async () => { relay = await boot({ ...SLOW_ENV, IMGRELAY_WORKERS: '1', IMGRELAY_QUEUE_TIMEOUT_MS: '250' }); });

  it('a transform past TRANSFORM_TIMEOUT_S → 504 E_TRANSFORM_TIMEOUT, no-store, and never remembered: it runs again', async () => {
    for (let attempt = 1; attempt <= 2; attempt++) {
      const t0 = performance.now();
      const body = await problem(await fetch(`${relay.url}${HEAVY(50)}`));
      expect(body).toMatchObject({ status: 504, code: 'E_TRANSFORM_TIMEOUT', cacheControl: 'no-store' });
      expect(performance.now() - t0).toBeLessThan(10_000);
      expect(relay.transformer.stats().timeouts).toBe(attempt);
    }
    expect(await relay.metrics.render()).toMatch(/^imgrelay_transform_timeouts_total 2$/m);
  });

  it('a job waiting past QUEUE_TIMEOUT_MS → 503 + Retry-After while the slot is still held; an over-budget one → 422 at once', async () => {
    const heavy = fetch(`${relay.url}${HEAVY(51)}`);
    await until(() => relay.transformer.stats().running === 1, 10_000);
    const t0 = performance.now();
    const waited = await problem(await fetch(`${relay.url}/?url=${src('/photo.jpg')}&w=101`));
    expect(waited).toMatchObject({ status: 503, code: 'E_OVERLOADED', cacheControl: 'no-store' });
    expect(Number(waited.retryAfter)).toBeGreaterThanOrEqual(1);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(240);
    expect(relay.transformer.stats().running).toBe(1); // the 503 came before the slot freed
    const refused = await problem(await fetch(`${relay.url}${OVER_BUDGET}`));
    expect(refused).toMatchObject({ status: 422, code: 'E_IMAGE_INVALID' });
    expect(relay.transformer.stats()).toMatchObject({ running: 1, queued: 0 });
    expect((await heavy).status).toBe(504);
  });

  it('a client that disconnects before its job starts: the job never runs', async () => {
    const heavy = fetch(`${relay.url}${HEAVY(52)}`);
    await until(() => relay.transformer.stats().running === 1, 10_000);
    const before = relay.transformer.stats();
    const req = httpRequest(`${relay.url}/?url=${src('/photo.jpg')}&w=102`);
    req.on('error', () => {});
    req.end();
    await until(() => relay.transformer.stats().queued === 1, 10_000);
    req.destroy();
    await until(() => relay.transformer.stats().dropped === before.dropped + 1, 10_000);
    expect((await heavy).status).toBe(504);
    await until(() => relay.transformer.stats().running === 0, 10_000);
    // Only the heavy job ran: the abandoned one left the queue without ever taking the slot.
    expect(relay.transformer.stats().completed).toBe(before.completed + 1);
  });
});

describe('the heavy lane (WORKERS=2)', () => {
  it('light jobs complete while heavy ones occupy their lane; heavy jobs never hold both slots', async () => {
    const relay = await boot({ ...SLOW_ENV, IMGRELAY_WORKERS: '2', IMGRELAY_QUEUE_TIMEOUT_MS: '20000' });
    let peakHeavy = 0;
    const sampler = setInterval(() => { peakHeavy = Math.max(peakHeavy, relay.transformer.stats().heavyRunning); }, 5);
    const heavies = [1, 2, 3].map((i) => fetch(`${relay.url}${HEAVY(60 + i)}`));
    await until(() => relay.transformer.stats().queued === 2, 10_000);
    const light = await fetch(`${relay.url}/?url=${src('/photo.jpg')}&w=103`);
    expect(light.status).toBe(200);
    // Answered while the heavy lane is still busy with the first job and two more wait their turn.
    expect(relay.transformer.stats()).toMatchObject({ heavyRunning: 1 });
    expect(relay.transformer.stats().queued).toBeGreaterThanOrEqual(1);
    expect((await Promise.all(heavies)).map((r) => r.status)).toEqual([504, 504, 504]);
    clearInterval(sampler);
    expect(peakHeavy).toBe(1);
  });
});
