/**
 * Variables of the observability concern: the admin dashboard's sampler and the request logs (README
 * "Configuration", docs/operations.md "Logs and the dashboard"). Portable (no `node:` imports).
 */
import { z } from 'zod';
import { int, type VarSpec } from '../config-schema.js';

/** A fraction between 0 and 1 (`0.01` = one in a hundred). */
const fraction = z.string().trim().regex(/^(0(\.\d+)?|1(\.0*)?|\.\d+)$/, 'a fraction between 0 and 1 (0.01 = 1 in 100)')
  .transform(Number);

export const OBSERVE_VARS = {
  // Every 5 s: 720 samples are the last hour (history.ts keeps at most 720 whatever the interval).
  STATS_SAMPLE_MS: [int(100, 600_000), '5000'],
  // Hits are most of the traffic and the least interesting lines: 1 in 100 by default; misses and errors always.
  LOG_HIT_SAMPLE: [fraction, '0.01'],
} as const satisfies Record<string, VarSpec>;

export interface ObserveConfig {
  /** How often the admin dashboard's sampler records a sample (ms). */
  statsSampleMs: number;
  /** The fraction of cache hits that get a request log line (misses, stale answers and errors always do). */
  logHitSample: number;
}

export function observeConfig(v: { STATS_SAMPLE_MS: number; LOG_HIT_SAMPLE: number }): ObserveConfig {
  return { statsSampleMs: v.STATS_SAMPLE_MS, logHitSample: v.LOG_HIT_SAMPLE };
}
