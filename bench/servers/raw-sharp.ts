/**
 * The limit for cold misses: sharp alone, sources already in memory, `sharp.concurrency(1)` and `jobs`
 * pipelines at once (2 = one per core, the fastest setting measured here). No HTTP, no cache, no fetch.
 */
import { readFile } from 'node:fs/promises';
import { avifQuality } from '../../src/transform/steps.js';
import type { EncodeSpec } from '../lib/encode.js';
import { AVIF_EFFORT, DEFAULT_QUALITY, sharpEncode as encode, tuneSharp } from '../lib/sharp-encode.js';
import { failStartup, serveParent } from './ipc.js';

interface RunRequest { files: string[]; spec: EncodeSpec; jobs: number }

const sources = new Map<string, Buffer>();

async function load(files: string[]): Promise<number> {
  for (const file of files) if (!sources.has(file)) sources.set(file, await readFile(file));
  return sources.size;
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
  tuneSharp();
  serveParent({ avifEffort: AVIF_EFFORT, avifQuality80: avifQuality(DEFAULT_QUALITY) }, {
    load: (files) => load(files as string[]),
    run: (request) => run(request as RunRequest),
  }, async () => undefined);
}

main().catch(failStartup);
