/**
 * The limit for cold misses: sharp alone, sources already in memory, `sharp.concurrency(1)` and `jobs`
 * pipelines at once (2 = one per core, the fastest setting measured here). No HTTP, no cache, no fetch.
 */
import { readFile } from 'node:fs/promises';
import sharp from 'sharp';
import { parseConfig } from '../../src/config.js';
import { avifQuality } from '../../src/transform/steps.js';
import type { EncodeSpec } from '../lib/encode.js';
import { failStartup, serveParent } from './ipc.js';

/** imgrelay's defaults, read from its own code so the limit follows it: AVIF effort and q → AVIF quality mapping. */
const AVIF_EFFORT = parseConfig({}).avifEffort;
const DEFAULT_QUALITY = 80;

interface RunRequest { files: string[]; spec: EncodeSpec; jobs: number }

const sources = new Map<string, Buffer>();

async function load(files: string[]): Promise<number> {
  for (const file of files) if (!sources.has(file)) sources.set(file, await readFile(file));
  return sources.size;
}

/** The same decode → orient → resize → encode settings imgrelay's steps use (src/transform/steps.ts). */
function encode(input: Buffer, spec: EncodeSpec): Promise<Buffer> {
  const pipeline = sharp(input, { sequentialRead: true, failOn: 'error' }).autoOrient().resize({ width: spec.width });
  const quality = spec.quality ?? DEFAULT_QUALITY;
  switch (spec.format) {
    case 'jpeg': return pipeline.jpeg({ quality, mozjpeg: false }).toBuffer();
    case 'webp': return pipeline.webp({ quality, effort: 4 }).toBuffer();
    case 'avif': return pipeline.avif({ quality: avifQuality(quality), effort: AVIF_EFFORT }).toBuffer();
  }
}

async function run({ files, spec, jobs }: RunRequest): Promise<{ ops: number; elapsedMs: number; bytesOut: number }> {
  await load(files);
  let next = 0;
  let bytesOut = 0;
  const started = performance.now();
  const worker = async () => {
    while (next < files.length) {
      const output = await encode(sources.get(files[next++]) as Buffer, spec);
      bytesOut += output.length;
    }
  };
  await Promise.all(Array.from({ length: jobs }, worker));
  return { ops: files.length, elapsedMs: performance.now() - started, bytesOut };
}

async function main(): Promise<void> {
  sharp.concurrency(1);
  serveParent({ avifEffort: AVIF_EFFORT, avifQuality80: avifQuality(DEFAULT_QUALITY) }, {
    load: (files) => load(files as string[]),
    run: (request) => run(request as RunRequest),
  }, async () => undefined);
}

main().catch(failStartup);
