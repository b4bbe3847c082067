/**
 * Where one request's time went, by stage: the origin fetch, the wait for a transform slot, the transform, the
 * persistent store's read. Measured where each stage runs (src/images.ts, the queue's end marked by the pool's
 * `onStart`; src/cache/tiered.ts) into an object the request carries, then written out twice: as `Server-Timing` and in the request's log line.
 * Work shared by concurrent identical requests (single-flight) is timed into the request that started it; the ones
 * that joined it show only their total. Portable.
 */

export type TimedStage = 'fetch' | 'queue' | 'transform' | 'store';

/** Milliseconds per stage; a stage that did not run for this request is absent. */
export type StageTimings = Partial<Record<TimedStage, number>>;

const ORDER: readonly TimedStage[] = ['fetch', 'queue', 'transform', 'store'];

export function addStage(timings: StageTimings | undefined, stage: TimedStage, ms: number): void {
  if (timings) timings[stage] = (timings[stage] ?? 0) + ms;
}

/** Runs `work`, adding its duration to `stage` (when the request carries timings). */
export async function timeStage<T>(timings: StageTimings | undefined, stage: TimedStage, work: () => Promise<T>): Promise<T> {
  if (!timings) return work();
  const started = performance.now();
  try {
    return await work();
  } finally {
    addStage(timings, stage, performance.now() - started);
  }
}

const round = (ms: number) => Math.round(ms * 10) / 10;

/** `cache;desc=MISS, fetch;dur=12.3, transform;dur=40.1, total;dur=55.0` (RFC: W3C Server Timing). */
export function serverTiming(state: string, timings: StageTimings, totalMs: number): string {
  let header = `cache;desc=${state}`;
  for (const stage of ORDER) {
    const ms = timings[stage];
    if (ms !== undefined) header += `, ${stage};dur=${ms.toFixed(1)}`;
  }
  return `${header}, total;dur=${totalMs.toFixed(1)}`;
}

/** The stages rounded to 0.1 ms, for a log line. */
export function roundedStages(timings: StageTimings): StageTimings {
  const out: StageTimings = {};
  for (const stage of ORDER) if (timings[stage] !== undefined) out[stage] = round(timings[stage]);
  return out;
}
