/**
 * The drain's variable (src/http/drain.ts says what each phase is for). Portable: the table is parsed with the others.
 */
import { type VarSpec, int } from '../config-schema.js';

export const DRAIN_VARS = {
  // Long enough for a load balancer to see /readyz fail and route away (probe interval × threshold, plus margin).
  DRAIN_DELAY_MS: [int(0, 600_000), '5000'],
} as const satisfies Record<string, VarSpec>;

export interface DrainConfig {
  /** How long /readyz fails, while the listener still serves, before the listener closes (0: close at once). */
  delayMs: number;
}

export function toDrainConfig(v: { DRAIN_DELAY_MS: number }): DrainConfig {
  return { delayMs: v.DRAIN_DELAY_MS };
}
