/**
 * One JSON line per image request, at `info` (docs/operations.md "Logs and the dashboard"): the request id (the one
 * an error body carries as `instance: urn:request:<id>`, and a full-path response as `X-Request-Id`), the URL form,
 * the source host, X-Cache, status, bytes, total milliseconds and the stages (the same as `Server-Timing`).
 * Misses, stale answers and errors always get their line; hits only one in `round(1 / IMGRELAY_LOG_HIT_SAMPLE)`
 * (each such line says `sample`, so counts can be scaled back). Portable.
 */
import type { Logger } from '../logger.js';
import { type StageTimings, roundedStages } from './stage-timings.js';

export interface RequestLine {
  requestId: string;
  /** `legacy`, `query`, `path`; `error` when the URL did not parse. */
  form: string;
  /** The source's host (absent when the URL did not parse). */
  host?: string;
  /** X-Cache; absent for errors. */
  cache?: string;
  status: number;
  /** Body bytes sent. */
  bytes: number;
  ms: number;
  stages?: StageTimings;
  /** The E_* code of an error. */
  code?: string;
}

export const isHit = (cache: string | undefined): boolean => cache === 'HIT-MEMORY' || cache === 'HIT-STORE';

export class RequestLog {
  /** Log every n-th hit (0: none). */
  private readonly every: number;
  private readonly sample: number;
  private hits = 0;

  constructor(private readonly logger: Logger, hitSample: number) {
    this.every = hitSample > 0 ? Math.max(1, Math.round(1 / hitSample)) : 0;
    this.sample = this.every === 0 ? 0 : 1 / this.every;
  }

  /** Whether a request in `cache` state gets a line: a counter step for a hit, nothing else (the fast path asks). */
  wants(cache: string | undefined): boolean {
    if (!isHit(cache)) return true;
    if (this.every === 0) return false;
    if (++this.hits < this.every) return false;
    this.hits = 0;
    return true;
  }

  /** Writes the line; call only when `wants` said yes. */
  write(line: RequestLine): void {
    const stages = line.stages && roundedStages(line.stages);
    const ms = Math.round(line.ms * 10) / 10;
    const sampled = isHit(line.cache) && this.every > 1 ? { sample: this.sample } : undefined;
    this.logger.info({ ...line, ms, ...(stages ? { stages } : {}), ...sampled }, 'request');
  }
}
