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
import type { TransformJob, TransformResult, Transformer } from './types.js';
import { MIME_TYPES } from './sniff.js';
import { createPool, type Pool, type PoolStats } from './pool.js';
import { type HeaderGate, probe, type Plan, type PipelineLimits } from './plan.js';
import { createProbeGate, type ProbeStats } from './probe-gate.js';
import { checkAffordableOptions } from './cost.js';
import { applySteps, decode } from './steps.js';
import { toImageError } from './sharp-errors.js';
import { cloudflareJson, readFacts, weservJson } from './describe.js';

export interface SharpTransformerDeps {
  logger: Logger;
}

export interface SharpTransformerStats extends PoolStats {
  /** Jobs that ran past TRANSFORM_TIMEOUT_S (504 E_TRANSFORM_TIMEOUT). */
  timeouts: number;
  /** Jobs refused from their header and options as over the cost budget, before taking any slot. */
  overBudget: number;
  /** Header reads that need libvips (every source but JPEG): bounded like transforms (probe-gate.ts). */
  probes: ProbeStats;
}

export interface SharpTransformer extends Transformer {
  stats(): SharpTransformerStats;
}

type TransformerConfig = Pick<Config, 'workers' | 'maxQueue' | 'queueTimeoutMs' | 'heavyTransformMs'> & PipelineLimits;

/**
 * Every job is probed and costed BEFORE it asks the pool for a slot: a refusal costs no slot, and the estimate
 * decides the lane (heavy jobs hold at most one slot on two; pool.ts). Header reads that need libvips (all but JPEG)
 * take turns of their own, as many as the slots (probe-gate.ts): an SVG is parsed whole, a GIF walked frame by frame.
 */
export function createSharpTransformer(config: TransformerConfig, deps: SharpTransformerDeps): SharpTransformer {
  sharp.concurrency(1);
  sharp.cache(false);
  const slots = config.workers || availableParallelism();
  const pool: Pool = createPool({ slots, maxQueue: config.maxQueue, queueTimeoutMs: config.queueTimeoutMs });
  const probes = createProbeGate({ slots, maxQueue: config.maxQueue, queueTimeoutMs: config.queueTimeoutMs,
    timeoutS: config.transformTimeoutS });
  const limits: PipelineLimits = {
    maxSourcePixels: config.maxSourcePixels, maxAnimationPixels: config.maxAnimationPixels,
    maxOutputDimension: config.maxOutputDimension, transformTimeoutS: config.transformTimeoutS,
    avifEffort: config.avifEffort, transformBudgetMs: config.transformBudgetMs,
  };
  const counts = { timeouts: 0, overBudget: 0 };
  // A job's header reads take turns in the probe gate, as the job's client and cancelled with its signal.
  const gateOf = (job: TransformJob): HeaderGate => (read) => probes.run(read, { signal: job.signal, client: job.client });
  const transform = async (job: TransformJob): Promise<TransformResult> => {
    if (job.spec.describe) return describe(job, gateOf(job), transformImage);
    return transformImage(job);
  };
  const transformImage = async (job: TransformJob): Promise<TransformResult> => {
    const plan = await probe(job, limits, gateOf(job)).catch((error: unknown) => {
      // A caller that left while its probe waited: its abort, never a verdict on the image (that would be cached).
      if (job.signal?.aborted && !(error instanceof RelayError)) throw error;
      throw refused(error, job, deps.logger, counts);
    });
    const heavy = plan.cost.ms >= config.heavyTransformMs;
    return pool.run(() => {
      job.onStart?.();
      return runJob(job, plan, limits, deps.logger, counts);
    }, { signal: job.signal, client: job.client, heavy });
  };
  return {
    check: checkAffordableOptions,
    transform,
    stats: () => ({ ...pool.stats(), ...counts, probes: probes.stats() }),
  };
}

/**
 * JSON instead of the image (describe.ts): weserv's describes the source from its header (a bounded read, like a
 * probe); Cloudflare's runs the request's transform to report the output size.
 */
async function describe(job: TransformJob, gate: HeaderGate,
  transformImage: (job: TransformJob) => Promise<TransformResult>): Promise<TransformResult> {
  const facts = await gate(() => readFacts(job)).catch((error: unknown) => { throw toImageError(error); });
  if (job.spec.describe === 'weserv') return weservJson(facts);
  const output = await transformImage({ ...job, spec: { ...job.spec, describe: undefined } });
  return cloudflareJson(facts, output);
}

/** A job refused (from its header, before any slot) or failed (while running): counted and logged in one place. */
function refused(error: unknown, job: TransformJob, logger: Logger, counts: { overBudget: number }): RelayError {
  const relayError = toImageError(error);
  if (/IMGRELAY_TRANSFORM_BUDGET_MS/.test(relayError.detail)) counts.overBudget++;
  logger.debug({ code: relayError.code, detail: relayError.detail, sourceFormat: job.sourceFormat }, 'transform refused');
  return relayError;
}

async function runJob(job: TransformJob, plan: Plan, limits: PipelineLimits, logger: Logger,
  counts: { timeouts: number; overBudget: number }): Promise<TransformResult> {
  const started = Date.now();
  try {
    const { data, info } = await applySteps(decode(job.source, plan), plan, limits).toBuffer({ resolveWithObject: true });
    logger.debug({ output: plan.output, pages: plan.pages, width: info.width, ms: Date.now() - started }, 'transformed');
    return {
      // A copy, not a view: libvips grows its output buffer by doubling, so the buffer sharp hands back may hold up
      // to twice its length outside the JS heap, uncounted by the memory tier (docs/memory.md). The copy frees it now.
      body: new Uint8Array(data),
      format: plan.output,
      contentType: MIME_TYPES[plan.output],
      width: info.width,
      // An animation is one tall strip of frames; its visible height is one page.
      height: info.pageHeight ?? info.height,
    };
  } catch (error) {
    const relayError = toImageError(error);
    if (relayError.code !== 'E_TRANSFORM_TIMEOUT') throw refused(relayError, job, logger, counts);
    // The estimate let it in, yet it ran out of time: the budget needs a look (or the machine is overloaded).
    counts.timeouts++;
    logger.warn({ code: relayError.code, sourceFormat: job.sourceFormat, output: plan.output, pages: plan.pages,
      estimatedMs: Math.round(plan.cost.ms), ms: Date.now() - started }, 'transform timed out');
    throw relayError;
  }
}
