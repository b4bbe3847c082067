/** What every workload shares: settings, the dataset, the origin, progress logging and peak-RSS bookkeeping. */
import type { Child } from './child.js';
import type { Dataset } from './data.js';
import type { BenchOrigin } from './origin.js';
import { mib } from './proc.js';
import type { Sample } from './rounds.js';
import type { Settings } from './settings.js';

export interface PeakRss {
  workload: string;
  process: string;
  peakMiB: number;
  /** The memory tier budget the process ran with (MiB), if it is an imgrelay. */
  memoryTierMiB?: number;
}

export class Session {
  readonly peaks: PeakRss[] = [];

  constructor(readonly settings: Settings, readonly data: Dataset, readonly origin: BenchOrigin) {}

  log(line: string): void {
    process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${line}\n`);
  }

  /** The progress line each interleaved round prints (round -1 is the unrecorded warm-up). */
  roundLogger(unit: string): (name: string, round: number, sample: Sample) => void {
    return (name, round, sample) => this.log(`  ${name} ${round < 0 ? 'warm-up' : `round ${round + 1}`}: ` +
      `${sample.rate.toFixed(1)} ${unit}, ${sample.cpuMsPerOp.toFixed(3)} ms server CPU/op, ${sample.errors} errors`);
  }

  /** Reads the child's peak RSS (VmHWM) for the report, then stops it. */
  async retire(workload: string, child: Child, memoryTierMiB?: number): Promise<void> {
    try {
      this.peaks.push({ workload, process: child.name, peakMiB: mib(child.memory().hwmKb), memoryTierMiB });
    } catch {
      // The process already died; its failure is reported by the workload itself.
    }
    await child.stop();
  }

  /** A path of the dataset as an absolute file name. */
  file(relative: string): string {
    return `${this.data.root}${relative}`;
  }
}

/**
 * Starts the children one by one, runs `body`, and always retires every child that started (peak RSS recorded),
 * even when a later start or the body throws.
 */
export async function withChildren<T extends Record<string, Child>, R>(session: Session, workload: string,
  starters: { [P in keyof T]: () => Promise<T[P]> }, body: (children: T) => Promise<R>): Promise<R> {
  const started: Child[] = [];
  try {
    const children = {} as T;
    for (const key of Object.keys(starters) as (keyof T)[]) {
      children[key] = await starters[key]();
      started.push(children[key]);
    }
    return await body(children);
  } finally {
    for (const child of started) await session.retire(workload, child, tierOf(child));
  }
}

const tierOf = (child: Child) =>
  (typeof child.info.memoryTierMiB === 'number' ? child.info.memoryTierMiB : undefined);
