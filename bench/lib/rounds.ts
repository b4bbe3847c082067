/**
 * Interleaved measurement: every round runs each contender once, in order (A B C, A B C …), so drift in the
 * machine's speed hits all of them alike. Ratios are taken per round, then their median. Contenders are called
 * once with round -1 first, as an unrecorded warm-up.
 */
import type { Child } from './child.js';
import { median, pairedRatios, type Spread, spread } from './stats.js';

export interface Sample {
  /** Operations (requests, encodes) per second. */
  rate: number;
  /** CPU time of the serving process per operation, ms. */
  cpuMsPerOp: number;
  /** Median latency of one operation, ms (NaN when not measured). */
  p50Ms: number;
  ops: number;
  errors: number;
}

export type Contender = (round: number) => Promise<Sample>;

export async function interleave<K extends string>(rounds: number, contenders: Record<K, Contender>,
  onSample?: (name: K, round: number, sample: Sample) => void): Promise<Record<K, Sample[]>> {
  const names = Object.keys(contenders) as K[];
  const samples = Object.fromEntries(names.map((name) => [name, [] as Sample[]])) as Record<K, Sample[]>;
  // Round -1 warms every contender up (lazy imports, JIT, first connections) and is not recorded.
  for (const name of names) onSample?.(name, -1, await contenders[name](-1));
  for (let round = 0; round < rounds; round++) {
    for (const name of names) {
      const sample = await contenders[name](round);
      samples[name].push(sample);
      onSample?.(name, round, sample);
    }
  }
  return samples;
}

/** Runs `work` and charges the CPU time `server` spent meanwhile to it. */
export async function withServerCpu<T>(server: Child, work: () => Promise<T>): Promise<{ value: T; cpuMs: number }> {
  const before = server.cpuMs();
  const value = await work();
  return { value, cpuMs: server.cpuMs() - before };
}

export interface Summary {
  rate: number;
  cpuMsPerOp: number;
  p50Ms: number;
  errors: number;
}

export function summarise(samples: readonly Sample[]): Summary {
  return {
    rate: median(samples.map((s) => s.rate)),
    cpuMsPerOp: median(samples.map((s) => s.cpuMsPerOp)),
    p50Ms: median(samples.map((s) => s.p50Ms)),
    errors: samples.reduce((total, s) => total + s.errors, 0),
  };
}

/** The ratios of A's value to B's in the same round: their median over rounds and their range. */
export function roundRatioSpread(a: readonly Sample[], b: readonly Sample[], pick: (s: Sample) => number = (s) => s.rate)
  : Spread {
  return spread(pairedRatios(a.map(pick), b.map(pick)));
}
