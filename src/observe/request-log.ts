/**
 * One JSON line per image request, at `info` (docs/operations.md "Logs and the dashboard"): the request id (the one
 * an error body carries as `instance: urn:request:<id>`, and a full-path response as `X-Request-Id`), the URL form,
 * the source host, X-Cache, status, bytes, total milliseconds and the stages (the same as `Server-Timing`).
 * Misses, stale answers and errors always get their line; hits only one in `round(1 / IMGRELAY_LOG_HIT_SAMPLE)`
 * (each such line says `sample`, so counts can be scaled back). Errors are logged up to ERROR_LINES_PER_S per code
 * per second: a flood of refusals (429s of a rate-limited client, 403s of forged signatures) would otherwise cost a
 * synchronous stdout write each and fill the disk; the next line of that code says how many were left out
 * (`suppressed`), and the metrics still count every one. Portable.
 */
import type { RelayError } from '../errors.js';
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
  /** An error's detail (and its cause's message): the one line of a classified failure, so it needs no stack. */
  detail?: string;
}

/** An error's `detail` for its request line, bounded (details may quote URLs). */
export function errorDetail(error: RelayError): string {
  const cause = error.cause instanceof Error ? `: ${error.cause.message}` : '';
  return `${error.detail}${cause}`.slice(0, 500);
}

/** Error lines of one code written per second; the rest of that second are counted into the next line's `suppressed`. */
export const ERROR_LINES_PER_S = 20;

const isHit = (cache: string | undefined): boolean => cache === 'HIT-MEMORY' || cache === 'HIT-STORE';

export class RequestLog {
  /** Log every n-th hit (0: none). */
  private readonly every: number;
  private readonly sample: number;
  private hits = 0;
  /** By E_* code (a closed set: the map stays small): the current second, lines written in it, lines left out. */
  private readonly errors = new Map<string, { second: number; written: number; suppressed: number }>();

  constructor(private readonly logger: Logger, hitSample: number, private readonly now = () => performance.now()) {
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
    const suppressed = line.code === undefined ? 0 : this.admitError(line.code);
    if (suppressed === false) return;
    const stages = line.stages && roundedStages(line.stages);
    const ms = Math.round(line.ms * 10) / 10;
    const sampled = isHit(line.cache) && this.every > 1 ? { sample: this.sample } : undefined;
    this.logger.info({ ...line, ms, ...(stages ? { stages } : {}), ...sampled, ...(suppressed ? { suppressed } : {}) },
      'request');
  }

  /** False when this second already had its lines of `code`; else how many of that code were left out before it. */
  private admitError(code: string): number | false {
    const second = Math.floor(this.now() / 1000);
    let state = this.errors.get(code);
    if (!state) this.errors.set(code, state = { second, written: 0, suppressed: 0 });
    if (state.second !== second) {
      state.second = second;
      state.written = 0;
    }
    if (state.written >= ERROR_LINES_PER_S) {
      state.suppressed += 1;
      return false;
    }
    state.written += 1;
    const suppressed = state.suppressed;
    state.suppressed = 0;
    return suppressed;
  }
}
