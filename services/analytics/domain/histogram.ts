/**
 * A fixed log-scale latency histogram. Bucket i > 0 holds latencies in
 * [MIN·G^(i-1), MIN·G^i) milliseconds; bucket 0 holds everything below MIN.
 * A percentile is answered with the geometric middle of its bucket, so its
 * relative error is at most √G − 1 ≈ 3.9 % (G = 1.08), inside the 5 % the
 * analytics contract promises, whatever the distribution. Fixed bounds make
 * histograms from any minute, replica or dimension mergeable by addition.
 */
export const HISTOGRAM_MIN_MS = 0.01;
export const HISTOGRAM_GROWTH = 1.08;
/** Buckets up to ~1 h; slower requests land in the last one. */
export const HISTOGRAM_BUCKETS = Math.ceil(Math.log(3_600_000 / HISTOGRAM_MIN_MS) / Math.log(HISTOGRAM_GROWTH)) + 1;

const logGrowth = Math.log(HISTOGRAM_GROWTH);

/** Sparse counts by bucket index (as stored in rollup documents under `h.<i>`). */
export type Histogram = Record<string, number>;

/** The bucket of a latency. */
export function bucketOf(latencyMs: number): number {
  if (!(latencyMs >= HISTOGRAM_MIN_MS)) return 0;
  return Math.min(HISTOGRAM_BUCKETS - 1, Math.floor(Math.log(latencyMs / HISTOGRAM_MIN_MS) / logGrowth) + 1);
}

/** The value a bucket stands for: its geometric middle (0 for bucket 0). */
export function bucketValue(bucket: number): number {
  if (bucket <= 0) return 0;
  return HISTOGRAM_MIN_MS * HISTOGRAM_GROWTH ** (bucket - 1) * Math.sqrt(HISTOGRAM_GROWTH);
}

/** Adds `from` into `into`. */
export function mergeHistogram(into: Histogram, from: Histogram | undefined): Histogram {
  if (from) for (const [k, n] of Object.entries(from)) into[k] = (into[k] ?? 0) + n;
  return into;
}

/**
 * Nearest-rank percentiles (`ps` in 0..1) of the histogram: the value of the
 * bucket holding the ⌈p·n⌉-th smallest latency. 0 for an empty histogram.
 */
export function percentiles(h: Histogram, ps: readonly number[]): number[] {
  const buckets = Object.entries(h).map(([k, n]) => [Number(k), n] as const).filter(([, n]) => n > 0).sort((a, b) => a[0] - b[0]);
  const total = buckets.reduce((s, [, n]) => s + n, 0);
  if (total === 0) return ps.map(() => 0);
  return ps.map((p) => {
    const rank = Math.max(1, Math.ceil(p * total));
    let seen = 0;
    for (const [bucket, n] of buckets) {
      seen += n;
      if (seen >= rank) return bucketValue(bucket);
    }
    return bucketValue(buckets[buckets.length - 1]![0]);
  });
}
