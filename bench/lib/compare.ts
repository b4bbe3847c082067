/** Turns interleaved samples into a comparison table: raw medians beside the per-round ratios. */
import { fmt, fmtRatio, fmtRatioRange, type Table } from './report.js';
import { roundRatioSpread, type Sample, summarise } from './rounds.js';

export interface Comparison {
  table: Table;
  /** Per-contender: median over rounds of (subject rate / contender rate), same round. */
  rateRatio: Record<string, number>;
  /** Per-contender: the lowest and highest of those per-round rate ratios. */
  rateRange: Record<string, readonly [number, number]>;
  /** Per-contender: median over rounds of (subject CPU per op / contender CPU per op). */
  cpuRatio: Record<string, number>;
}

/** `subject` (imgrelay) is compared with every other contender in `samples`. */
export function compare(title: string, samples: Record<string, Sample[]>, subject: string, unit: string): Comparison {
  const rateRatio: Record<string, number> = {};
  const rateRange: Record<string, readonly [number, number]> = {};
  const cpuRatio: Record<string, number> = {};
  const rows = Object.entries(samples).map(([name, list]) => {
    const summary = summarise(list);
    const isSubject = name === subject;
    const rates = roundRatioSpread(samples[subject], list);
    rateRatio[name] = rates.median;
    rateRange[name] = [rates.low, rates.high];
    cpuRatio[name] = roundRatioSpread(samples[subject], list, (s) => s.cpuMsPerOp).median;
    return [
      name, fmt(summary.rate, unit === 'req/s' ? 0 : 1), fmt(summary.cpuMsPerOp, 3), fmt(summary.p50Ms, 2),
      isSubject ? '—' : fmtRatioRange(rateRatio[name], rateRange[name]), isSubject ? '—' : fmtRatio(cpuRatio[name]),
      String(summary.errors), String(list.length),
    ];
  });
  return {
    table: {
      title,
      headers: ['contender', `median ${unit}`, 'server CPU ms/op', 'p50 latency ms', `${subject} ÷ it (rate; rounds' range)`,
        `${subject} ÷ it (CPU/op)`, 'errors', 'rounds'],
      rows,
    },
    rateRatio, rateRange, cpuRatio,
  };
}
