/**
 * The header probe's own bound. Every miss reads its source's header before it is costed (plan.ts); for JPEG that is
 * a few bytes parsed in JS, but for the rest it is sharp's `metadata()` on libuv's thread pool (shared with the fs
 * store and the transforms themselves): an SVG (up to MAX_SOURCE_BYTES) is parsed whole to learn its size, a GIF has
 * every frame walked. Unbounded, a burst of such misses would take every libuv thread at once, before any slot or
 * budget is asked for. So probes take turns too, like transforms:
 * - at most `slots` (WORKERS) run at once, waiting is fair between clients and bounded by QUEUE_TIMEOUT_MS
 *   (503 E_OVERLOADED + Retry-After, the pool's own), and a probe whose caller left is dropped before it runs;
 * - a probe running past TRANSFORM_TIMEOUT_S answers 504 E_TRANSFORM_TIMEOUT at once, while its turn stays taken until
 *   libvips really lets go (it cannot be interrupted): the bound on concurrent probes holds even then.
 * Node only in practice (the worker build does not probe with sharp), but plain JS.
 */
import { RelayError } from '../errors.js';
import { createPool, type RunOptions } from './pool.js';

export interface ProbeGateOptions {
  slots: number;
  maxQueue: number;
  queueTimeoutMs: number;
  /** TRANSFORM_TIMEOUT_S: the longest a caller waits for a running probe. */
  timeoutS: number;
}

export interface ProbeStats {
  running: number;
  /** The most probes ever seen running at once (never above the slots). */
  peakRunning: number;
  queued: number;
  /** Probes refused: queue full or waited past QUEUE_TIMEOUT_MS (503). */
  rejected: number;
  /** Probes that ran past TRANSFORM_TIMEOUT_S (504). */
  timedOut: number;
}

export interface ProbeGate {
  /** Runs `read` in its turn; rejects with 503 (no turn in time), 504 (ran too long) or the caller's abort. */
  run<T>(read: () => Promise<T>, options?: RunOptions): Promise<T>;
  stats(): ProbeStats;
}

export function createProbeGate({ slots, maxQueue, queueTimeoutMs, timeoutS }: ProbeGateOptions): ProbeGate {
  // No heavy lane: a probe's cost is not known before it runs (that is what it finds out).
  const pool = createPool({ slots, maxQueue, queueTimeoutMs, heavySlots: slots });
  const counts = { running: 0, peakRunning: 0, timedOut: 0 };
  const turn = async <T>(read: () => Promise<T>): Promise<T> => {
    counts.running++;
    counts.peakRunning = Math.max(counts.peakRunning, counts.running);
    try {
      return await read();
    } finally {
      counts.running--;
    }
  };
  return {
    // The deadline starts with the turn (waiting is QUEUE_TIMEOUT_MS's to bound); the caller is answered at the
    // deadline, but the turn is held until `read` really settles.
    run: <T>(read: () => Promise<T>, options?: RunOptions) => new Promise<T>((resolve, reject) => {
      pool.run(async () => {
        const timer = setTimeout(() => {
          counts.timedOut++;
          reject(new RelayError('E_TRANSFORM_TIMEOUT',
            `Reading the image header took longer than ${timeoutS} s (IMGRELAY_TRANSFORM_TIMEOUT_S)`));
        }, timeoutS * 1000);
        try {
          resolve(await turn(read));
        } catch (error) {
          reject(error);
        } finally {
          clearTimeout(timer);
        }
      }, options).catch(reject);
    }),
    stats: () => {
      const { queued, rejected } = pool.stats();
      return { running: counts.running, peakRunning: counts.peakRunning, queued, rejected, timedOut: counts.timedOut };
    },
  };
}
