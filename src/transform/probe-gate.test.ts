import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../config.js';
import { silentLogger } from '../logger.js';
import { createProbeGate } from './probe-gate.js';
import { createSharpTransformer } from './sharp-transformer.js';

/** A read that settles only when the test says so. */
function heldRead() {
  let finish!: () => void;
  const read = () => new Promise<string>((resolve) => { finish = () => resolve('header'); });
  return { read, finish: () => finish() };
}

/** An SVG parsed whole to learn its size: ~0.5 MB of 10,000 shapes (a source may be up to MAX_SOURCE_BYTES). */
function heavySvg(): Buffer {
  const shapes = Array.from({ length: 10_000 }, (_, i) =>
    `<rect x="${i % 1000}" y="${Math.floor(i / 1000)}" width="3" height="3" fill="#${(i % 4096).toString(16).padStart(3, '0')}"/>`);
  return Buffer.from(`<svg xmlns="http://www.w3.org/2000/svg" width="1000" height="1000">${shapes.join('')}</svg>`);
}

/** 400 one-pixel frames: a probe walks every one of them. */
async function manyFrameGif(): Promise<Buffer> {
  const frames = 400;
  const strip = Buffer.alloc(frames * 3);
  for (let f = 0; f < frames; f++) strip.set(f % 2 ? [255, 0, 0] : [0, 0, 255], f * 3);
  return sharp(strip, { raw: { width: 1, height: frames, channels: 3, pageHeight: 1 } })
    .gif({ loop: 0, delay: Array(frames).fill(20) }).toBuffer();
}

describe('probe gate', () => {
  it('a burst of probes never runs more than `slots` at once; the rest wait their turn', async () => {
    const gate = createProbeGate({ slots: 2, maxQueue: 64, queueTimeoutMs: 60_000, timeoutS: 60 });
    const reads = Array.from({ length: 10 }, heldRead);
    const results = reads.map((r) => gate.run(r.read));
    expect(gate.stats()).toMatchObject({ running: 2, queued: 8 });
    for (const r of reads) {
      r.finish();
      await new Promise((resolve) => setTimeout(resolve, 0));
    }
    expect(await Promise.all(results)).toEqual(Array(10).fill('header'));
    expect(gate.stats()).toMatchObject({ running: 0, peakRunning: 2, queued: 0 });
  });

  it('a probe that waits past QUEUE_TIMEOUT_MS → 503 E_OVERLOADED with Retry-After, never having run', async () => {
    const gate = createProbeGate({ slots: 1, maxQueue: 64, queueTimeoutMs: 50, timeoutS: 60 });
    const held = heldRead();
    const first = gate.run(held.read);
    let ran = false;
    const waiting = gate.run(async () => { ran = true; return 'late'; });
    await expect(waiting).rejects.toMatchObject({ code: 'E_OVERLOADED', status: 503 });
    expect(ran).toBe(false);
    held.finish();
    expect(await first).toBe('header');
  });

  it('a probe running past TRANSFORM_TIMEOUT_S → 504 E_TRANSFORM_TIMEOUT, and its turn stays taken until the read ends', async () => {
    const gate = createProbeGate({ slots: 1, maxQueue: 64, queueTimeoutMs: 60_000, timeoutS: 1 });
    const stuck = heldRead(); // libvips cannot be interrupted: the thread is busy until it is done
    await expect(gate.run(stuck.read)).rejects.toMatchObject({ code: 'E_TRANSFORM_TIMEOUT', status: 504 });
    const next = gate.run(async () => 'next');
    expect(gate.stats()).toMatchObject({ running: 1, queued: 1, timedOut: 1 });
    stuck.finish();
    expect(await next).toBe('next');
  });

  it('a probe whose caller left while it waited is dropped without running', async () => {
    const gate = createProbeGate({ slots: 1, maxQueue: 64, queueTimeoutMs: 60_000, timeoutS: 60 });
    const held = heldRead();
    const first = gate.run(held.read);
    const leaving = new AbortController();
    let ran = false;
    const dropped = gate.run(async () => { ran = true; return 'x'; }, { signal: leaving.signal });
    leaving.abort();
    await expect(dropped).rejects.toMatchObject({ name: 'AbortError' });
    held.finish();
    await first;
    expect(ran).toBe(false);
  });
});

describe('the transformer probes through the gate (real sharp)', () => {
  it('a burst of 12 large SVG and GIF misses puts at most WORKERS header reads on the libuv pool at once', async () => {
    const transformer = createSharpTransformer(parseConfig({ IMGRELAY_WORKERS: '2' }), { logger: silentLogger });
    const svg = new Uint8Array(heavySvg());
    const gif = new Uint8Array(await manyFrameGif());
    // sharp's own counter of tasks waiting for a libuv thread: every metadata() call is one until a thread takes it.
    let peakWaiting = 0;
    const sample = () => { peakWaiting = Math.max(peakWaiting, sharp.counters().queue); };
    const jobs = Array.from({ length: 12 }, (_, i) => transformer.transform(i % 2
      ? { source: svg, sourceFormat: 'svg', spec: { width: 8 }, output: 'png' }
      : { source: gif, sourceFormat: 'gif', spec: { width: 8 }, output: 'png' }));
    sample(); // right after the burst: ungated, all 12 reads would be handed to libuv here
    const sampler = setInterval(sample, 1);
    const results = await Promise.all(jobs);
    clearInterval(sampler);
    expect(results.every((r) => r.width === 8)).toBe(true);
    // The counter holds every sharp task waiting for a thread: the gated header reads (≤ WORKERS = 2) and the
    // pipelines of the transforms the pool runs (≤ WORKERS = 2), so 4 at most whatever else keeps libuv busy;
    // ungated, the 12 header reads alone are handed over at once (10 were seen waiting).
    expect(peakWaiting).toBeLessThanOrEqual(4);
    expect(transformer.stats().probes).toMatchObject({ peakRunning: 2, running: 0, queued: 0, rejected: 0 });
  }, 60_000);
});
