/** Command-line flags and the two sizes of the suite: full (`npm run bench`) and quick (CI smoke, < 2 min). */

export interface Settings {
  mode: 'full' | 'quick';
  /** Interleaved rounds per comparison. */
  rounds: number;
  /** Distinct 2000×1500 photos per cold-miss round, per format. */
  coldPhotos: { jpeg: number; webp: number; avif: number };
  /**
   * ipx's share of the AVIF photos: it encodes at sharp's effort 4 (~1.4 s a photo here), so it gets the first few
   * only, while the others get enough photos per round that the drain at the end of a round does not dominate.
   */
  ipxAvifPhotos: number;
  /** Seconds per wrk round (hit workloads). */
  wrkSeconds: number;
  wrkConnections: number;
  /** Concurrent identical cold requests for coalescing. */
  coalesce: number[];
  /** Load the article page through ipx too (≈ 25 s a page here: AVIF at effort 4), full mode only by default. */
  articleIpx: boolean;
  /** Soak duration in seconds (0 = no soak). */
  soakS: number;
  /** Also profile imgrelay (node --cpu-prof) on the memory-hit load and summarise the hot functions. */
  profile: boolean;
  /** Only these workloads (by id), or all. */
  only?: Set<string>;
  /** Where BENCHMARKS.md is written (empty = do not write). */
  output: string;
}

const FULL: Omit<Settings, 'soakS' | 'profile' | 'only' | 'output'> = {
  mode: 'full', rounds: 7, coldPhotos: { jpeg: 40, webp: 40, avif: 32 }, ipxAvifPhotos: 8, wrkSeconds: 5, wrkConnections: 32,
  coalesce: [20, 100], articleIpx: true,
};

const QUICK: typeof FULL = {
  mode: 'quick', rounds: 2, coldPhotos: { jpeg: 8, webp: 6, avif: 4 }, ipxAvifPhotos: 2, wrkSeconds: 2, wrkConnections: 32,
  coalesce: [20, 100], articleIpx: false,
};

export function parseArgs(argv: readonly string[]): Settings {
  const flag = (name: string) => argv.includes(name);
  const value = (name: string) => {
    const index = argv.indexOf(name);
    return index >= 0 ? argv[index + 1] : undefined;
  };
  const base = flag('--quick') ? QUICK : FULL;
  const rounds = value('--rounds');
  const only = value('--only');
  return {
    ...base,
    rounds: rounds ? Math.max(1, Number(rounds)) : base.rounds,
    soakS: Number(value('--soak') ?? 0),
    profile: flag('--profile'),
    only: only ? new Set(only.split(',')) : undefined,
    output: flag('--no-write') ? '' : (value('--out') ?? 'BENCHMARKS.md'),
  };
}

/** wrk options for one interleaved round; the unrecorded warm-up round (-1) is kept short. */
export function wrkLoad(settings: Settings, round: number, connections = settings.wrkConnections) {
  return { threads: 1, connections, durationS: round < 0 ? 1 : settings.wrkSeconds };
}

export const wants = (settings: Settings, workload: string) => !settings.only || settings.only.has(workload);
