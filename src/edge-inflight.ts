/**
 * The edge's budget for source bytes in flight (IMGRELAY_MAX_INFLIGHT_MB), per isolate.
 *
 * WHY a hard ceiling even for 0: on Node, 0 means "unbounded" and the operator owns the machine's memory; an isolate
 * has 128 MB in all (memory tier included), so "unbounded" there means the isolate is killed mid-response for
 * every request it holds. At the edge the budget is the configured one, at most EDGE_INFLIGHT_MAX_BYTES, and 0 is
 * that ceiling.
 */
import { type Config, ConfigError } from './config.js';

export const EDGE_INFLIGHT_MAX_BYTES = 48 * 1024 * 1024;

/** The isolate's budget; throws ConfigError when a source of MAX_SOURCE_BYTES could never fit in it. */
export function edgeInflightBytes(config: Pick<Config, 'maxInflightBytes' | 'maxSourceBytes'>): number {
  const configured = config.maxInflightBytes > 0 ? config.maxInflightBytes : Number.POSITIVE_INFINITY;
  const budget = Math.min(configured, EDGE_INFLIGHT_MAX_BYTES);
  if (config.maxSourceBytes > budget) {
    // Such a source would be refused as "overloaded, retry" forever; say so at start-up instead.
    throw new ConfigError([`IMGRELAY_MAX_SOURCE_BYTES=${config.maxSourceBytes}: on Workers it must fit the in-flight `
      + `budget of an isolate (${budget} bytes: IMGRELAY_MAX_INFLIGHT_MB, at most ${EDGE_INFLIGHT_MAX_BYTES / 1024 / 1024} MiB)`]);
  }
  return budget;
}
