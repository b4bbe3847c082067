/**
 * Request latencies of hits and of misses, counted into fixed log-spaced buckets (4 per doubling, from 50 µs to
 * ~52 s) so that the dashboard can show p50/p95 per sampling interval. Fixed size whatever the traffic: one array
 * increment per request, no reservoir, no allocation. The Prometheus histogram's buckets (1 ms and up) are too coarse
 * for memory hits, which take a fraction of a millisecond.
 */

const FLOOR_MS = 0.05;
const PER_DOUBLING = 4;
const BUCKETS = 81; // FLOOR_MS × 2^(80/4) ≈ 52 s; anything slower counts in the last bucket

/** The upper bound (ms) of bucket `index`. */
export const bucketBoundMs = (index: number): number => FLOOR_MS * 2 ** (index / PER_DOUBLING);

export class LatencyCounts {
  readonly counts = new Uint32Array(BUCKETS);
  total = 0;

  observe(ms: number): void {
    const index = !(ms > FLOOR_MS) ? 0 : Math.min(BUCKETS - 1, Math.ceil(PER_DOUBLING * Math.log2(ms / FLOOR_MS)));
    this.counts[index] += 1;
    this.total += 1;
  }

  /**
   * The `q` quantile (0–1) in ms since `since` (an earlier copy): the upper bound of the bucket holding it, so at
   * most 19 % above the true value. Null when nothing was observed in between.
   */
  quantileSince(since: LatencyCounts | undefined, q: number): number | null {
    const total = this.total - (since?.total ?? 0);
    if (total <= 0) return null;
    const rank = Math.max(1, Math.ceil(q * total));
    let seen = 0;
    for (let i = 0; i < BUCKETS; i += 1) {
      seen += this.counts[i] - (since?.counts[i] ?? 0);
      if (seen >= rank) return Math.round(bucketBoundMs(i) * 1000) / 1000;
    }
    return Math.round(bucketBoundMs(BUCKETS - 1) * 1000) / 1000;
  }

  copy(): LatencyCounts {
    const copy = new LatencyCounts();
    copy.counts.set(this.counts);
    copy.total = this.total;
    return copy;
  }
}

/**
 * Hits and misses apart. A STALE answer is a hit here (it is served from a tier at once; its revalidation runs after
 * the response), as in the hit ratio; a MISS waited for the image service's work.
 */
export class LatencyTally {
  readonly hits = new LatencyCounts();
  readonly misses = new LatencyCounts();

  observe(cache: string | undefined, seconds: number): void {
    if (cache === 'MISS') this.misses.observe(seconds * 1000);
    else if (cache !== undefined) this.hits.observe(seconds * 1000);
  }
}
