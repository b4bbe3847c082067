/**
 * The Node transformer: probe → named steps → encode, every job inside a bounded pool. Node only (sharp).
 *
 * libvips is tuned on purpose (FIELD-NOTES: on 2 cores, 2 pipelines of concurrency 1 are the peak):
 * `sharp.concurrency(1)` so each job uses one thread and parallelism comes from the pool's slots, and
 * `sharp.cache(false)` because every input is a fresh buffer (the operation cache only holds memory).
 */
import { availableParallelism } from 'node:os';
import sharp from 'sharp';
import type { Config } from '../config.js';
import { RelayError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { OutputFormat, TransformJob, TransformResult, Transformer } from './types.js';
import { createPool, type Pool, type PoolStats } from './pool.js';
import { probe, type PipelineLimits } from './plan.js';
import { applySteps, decode } from './steps.js';
import { toImageError } from './sharp-errors.js';

export const CONTENT_TYPES: Record<OutputFormat, string> = {
  jpeg: 'image/jpeg', png: 'image/png', webp: 'image/webp', avif: 'image/avif', gif: 'image/gif',
};

export interface SharpTransformerDeps {
  logger: Logger;
}

export interface SharpTransformer extends Transformer {
  stats(): PoolStats;
}

type TransformerConfig = Pick<Config, 'workers' | 'maxQueue'> & PipelineLimits;

export function createSharpTransformer(config: TransformerConfig, deps: SharpTransformerDeps): SharpTransformer {
  sharp.concurrency(1);
  sharp.cache(false);
  const pool: Pool = createPool({ slots: config.workers || availableParallelism(), maxQueue: config.maxQueue });
  const limits: PipelineLimits = {
    maxSourcePixels: config.maxSourcePixels, maxAnimationPixels: config.maxAnimationPixels,
    maxOutputDimension: config.maxOutputDimension, transformTimeoutS: config.transformTimeoutS,
    avifEffort: config.avifEffort,
  };
  return {
    transform: (job) => pool.run(() => runJob(job, limits, deps.logger), job.signal),
    stats: () => pool.stats(),
  };
}

async function runJob(job: TransformJob, limits: PipelineLimits, logger: Logger): Promise<TransformResult> {
  const started = Date.now();
  try {
    const plan = await probe(job, limits);
    const { data, info } = await applySteps(decode(job.source, plan), plan, limits).toBuffer({ resolveWithObject: true });
    logger.debug({ output: plan.output, pages: plan.pages, width: info.width, ms: Date.now() - started }, 'transformed');
    return {
      // A copy, not a view: libvips grows its output buffer by doubling, so the buffer sharp hands back may hold up
      // to twice its length outside the JS heap, uncounted by the memory tier (docs/memory.md). The copy frees it now.
      body: new Uint8Array(data),
      format: plan.output,
      contentType: CONTENT_TYPES[plan.output],
      width: info.width,
      // An animation is one tall strip of frames; its visible height is one page.
      height: info.pageHeight ?? info.height,
    };
  } catch (error) {
    const relayError = toImageError(error);
    if (!(error instanceof RelayError)) {
      logger.debug({ code: relayError.code, detail: relayError.detail, sourceFormat: job.sourceFormat }, 'transform refused');
    }
    throw relayError;
  }
}
