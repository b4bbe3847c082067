/**
 * Quick transform benchmark (run: `npx tsx bench/transform-quick.ts`).
 * 2000×1500 JPEG → 800w JPEG q80: imgrelay's transformer (pool of 2 slots, 2 jobs in flight) vs raw sharp with
 * 2 pipelines, interleaved A B A B in the same run (FIELD-NOTES: the machine's speed drifts, so only same-run
 * ratios mean anything). Then AVIF 800w at effort 0/2/4 and JPEG with/without mozjpeg, also interleaved.
 */
import { readFileSync } from 'node:fs';
import sharp from 'sharp';
import { parseConfig } from '../src/config.js';
import { silentLogger } from '../src/logger.js';
import { createSharpTransformer } from '../src/transform/sharp-transformer.js';

const ROUNDS = Number(process.env.ROUNDS ?? 5);
const JOBS = Number(process.env.JOBS ?? 40);

type Job = () => Promise<number>;

/** Runs `total` jobs with `parallel` in flight; returns ops/s, CPU ms per op and the mean output size. */
async function measure(job: Job, total: number, parallel: number) {
  let next = 0;
  let bytes = 0;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await Promise.all(Array.from({ length: parallel }, async () => {
    while (next++ < total) {
      const size = await job(); // not `bytes += await job()`: that reads `bytes` before the await and loses updates
      bytes += size;
    }
  }));
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  return { opsPerS: total / seconds, cpuMsPerOp: (cpu.user + cpu.system) / 1000 / total, meanBytes: bytes / total };
}

async function compare(label: string, variants: Record<string, Job>, total: number, parallel: number) {
  const names = Object.keys(variants);
  const results: Record<string, { ops: number[]; cpu: number[]; bytes: number }> = {};
  for (const name of names) results[name] = { ops: [], cpu: [], bytes: 0 };
  for (let round = 0; round < ROUNDS; round++) {
    for (const name of round % 2 === 0 ? names : [...names].reverse()) {
      const r = await measure(variants[name], total, parallel);
      results[name].ops.push(r.opsPerS);
      results[name].cpu.push(r.cpuMsPerOp);
      results[name].bytes = r.meanBytes;
    }
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const base = median(results[names[0]].ops);
  console.log(`\n${label} (${ROUNDS} interleaved rounds × ${total} jobs, ${parallel} in flight; medians)`);
  for (const name of names) {
    const ops = median(results[name].ops);
    console.log(`  ${name.padEnd(28)} ${ops.toFixed(1).padStart(6)} ops/s  ×${(ops / base).toFixed(2)}  `
      + `${median(results[name].cpu).toFixed(1)} ms CPU/op  ${(results[name].bytes / 1024).toFixed(1)} KiB`);
  }
}

async function main() {
  sharp.concurrency(1);
  sharp.cache(false);
  const photo = readFileSync(new URL('../test/fixtures/photo-wood.jpg', import.meta.url));
  const source = await sharp(photo).resize(2000, 1500).jpeg({ quality: 90 }).toBuffer();
  const config = parseConfig({ IMGRELAY_WORKERS: '2', IMGRELAY_MAX_QUEUE: '64' });
  const transformer = createSharpTransformer(config, { logger: silentLogger });
  const ours = (output: 'jpeg' | 'avif', effort?: number): Job => {
    const t = effort === undefined ? transformer
      : createSharpTransformer({ ...config, avifEffort: effort }, { logger: silentLogger });
    return async () => (await t.transform({ source, sourceFormat: 'jpeg', spec: { width: 800 }, output })).body.byteLength;
  };
  const raw = (mozjpeg: boolean): Job => async () =>
    (await sharp(source).resize(800).jpeg({ quality: 80, mozjpeg }).toBuffer()).byteLength;

  console.log(`node ${process.version}, sharp ${sharp.versions.sharp}, libvips ${sharp.versions.vips}`);
  await compare('2000×1500 JPEG → 800w JPEG q80', {
    'raw sharp, 2 pipelines': raw(false), 'imgrelay transformer, 2 jobs': ours('jpeg'),
  }, JOBS, 2);
  await compare('mozjpeg trade-off (raw sharp)', { 'libjpeg-turbo': raw(false), mozjpeg: raw(true) }, JOBS, 2);
  await compare('800w AVIF (q80 = AVIF quality 65) through the transformer', {
    'jpeg (reference)': ours('jpeg'), 'avif effort 0': ours('avif', 0), 'avif effort 2': ours('avif', 2),
    'avif effort 4': ours('avif', 4),
  }, Math.max(8, JOBS / 5), 2);
}

await main();
