import { describe, expect, it } from "vitest";
import { nearestRank, normal, seededRandom } from "../../../test/support/analytics-harness.js";
import {
  bucketOf, bucketValue, HISTOGRAM_BUCKETS, HISTOGRAM_GROWTH, HISTOGRAM_MIN_MS, mergeHistogram, percentiles, type Histogram,
} from "./histogram.js";

/** Lower bound of bucket i ≥ 1: MIN·G^(i−1). */
const lowerBound = (i: number) => HISTOGRAM_MIN_MS * HISTOGRAM_GROWTH ** (i - 1);
/** The worst relative error of a bucket's geometric middle. */
const BUCKET_ERROR = Math.sqrt(HISTOGRAM_GROWTH) - 1;
const relativeError = (actual: number, exact: number) => Math.abs(actual - exact) / exact;

function histogramOf(values: readonly number[]): Histogram {
  const h: Histogram = {};
  for (const v of values) {
    const b = bucketOf(v);
    h[b] = (h[b] ?? 0) + 1;
  }
  return h;
}

const ascending = (values: readonly number[]) => [...values].sort((a, b) => a - b);

/**
 * 200,000 latencies: 95 % lognormal (median 40 ms, σ = 1.1, itself
 * heavy-tailed) and 5 % Pareto (from 250 ms, α = 1.3: a tail with no finite
 * variance), as slow outliers make real traffic look.
 */
function skewedLatencies(seed: number, n = 200_000): number[] {
  const random = seededRandom(seed);
  return Array.from({ length: n }, () => (random() < 0.95
    ? Math.exp(Math.log(40) + 1.1 * normal(random))
    : 250 / (1 - random()) ** (1 / 1.3)));
}

/** 200,000 latencies from two modes: 70 % around 12 ms (cache hits), 30 % around 900 ms (slow upstream). */
function bimodalLatencies(seed: number, n = 200_000): number[] {
  const random = seededRandom(seed);
  return Array.from({ length: n }, () => (random() < 0.7
    ? Math.max(0.5, 12 + 2.5 * normal(random))
    : Math.max(100, 900 + 150 * normal(random))));
}

describe("histogram buckets", () => {
  it("puts zero, negative, NaN and sub-minimum latencies in bucket 0", () => {
    for (const v of [0, -5, Number.NaN, HISTOGRAM_MIN_MS / 2, HISTOGRAM_MIN_MS * (1 - 1e-9)]) expect(bucketOf(v)).toBe(0);
  });

  it("starts bucket i at MIN·G^(i−1)", () => {
    for (const i of [1, 2, 3, 10, 60, 120, 200, HISTOGRAM_BUCKETS - 1]) {
      expect(bucketOf(lowerBound(i) * (1 + 1e-9))).toBe(i);
      expect(bucketOf(lowerBound(i) * (1 - 1e-9))).toBe(i - 1);
    }
  });

  it("puts the minimum itself in bucket 1", () => {
    expect(bucketOf(HISTOGRAM_MIN_MS)).toBe(1);
  });

  it("covers one hour without clipping and clips anything slower into the last bucket", () => {
    expect(bucketOf(3_600_000)).toBeLessThanOrEqual(HISTOGRAM_BUCKETS - 1);
    expect(relativeError(bucketValue(bucketOf(3_600_000)), 3_600_000)).toBeLessThanOrEqual(BUCKET_ERROR);
    expect(bucketOf(86_400_000)).toBe(HISTOGRAM_BUCKETS - 1);
    expect(bucketOf(Number.POSITIVE_INFINITY)).toBe(HISTOGRAM_BUCKETS - 1);
  });

  it("represents every bucket by a value inside it, within √G − 1 of both of its bounds", () => {
    expect(bucketValue(0)).toBe(0);
    for (let i = 1; i < HISTOGRAM_BUCKETS; i++) {
      const value = bucketValue(i);
      expect(bucketOf(value)).toBe(i);
      expect(value / lowerBound(i) - 1).toBeCloseTo(BUCKET_ERROR, 12);
      expect(lowerBound(i + 1) / value - 1).toBeCloseTo(BUCKET_ERROR, 12);
    }
  });

  it("keeps √G − 1 under the 5 % the contract promises", () => {
    expect(BUCKET_ERROR).toBeLessThan(0.05);
  });
});

describe("histogram merge", () => {
  it("adds counts bucket by bucket into the target and answers it", () => {
    const into: Histogram = { 1: 2, 5: 1 };
    const merged = mergeHistogram(into, { 5: 3, 9: 1 });
    expect(merged).toBe(into);
    expect(into).toEqual({ 1: 2, 5: 4, 9: 1 });
  });

  it("leaves the target unchanged when merging nothing", () => {
    const into: Histogram = { 3: 7 };
    expect(mergeHistogram(into, undefined)).toEqual({ 3: 7 });
    expect(mergeHistogram(into, {})).toEqual({ 3: 7 });
  });

  it("answers the same percentiles for merged parts as for one histogram of all the values", () => {
    const values = skewedLatencies(7, 30_000);
    const parts = [values.slice(0, 1_000), values.slice(1_000, 17_000), values.slice(17_000)];
    const merged = parts.map(histogramOf).reduce((into, h) => mergeHistogram(into, h), {});
    expect(merged).toEqual(histogramOf(values));
    expect(percentiles(merged, [0.5, 0.95, 0.99])).toEqual(percentiles(histogramOf(values), [0.5, 0.95, 0.99]));
  });
});

describe("histogram percentiles", () => {
  it("answers 0 for every percentile of an empty histogram", () => {
    expect(percentiles({}, [0.5, 0.95, 0.99])).toEqual([0, 0, 0]);
    expect(percentiles({ 12: 0 }, [0.5])).toEqual([0]);
  });

  it("answers the one latency, within √G − 1, for every percentile of one value", () => {
    for (const p of percentiles(histogramOf([123.4]), [0, 0.01, 0.5, 0.95, 0.99, 1])) {
      expect(relativeError(p, 123.4)).toBeLessThanOrEqual(BUCKET_ERROR);
    }
  });

  it("answers nearest-rank percentiles: the value holding the ⌈p·n⌉-th smallest latency", () => {
    const h = histogramOf([1, 10, 100, 1_000]);
    const [p25, p26, p50, p51, p100] = percentiles(h, [0.25, 0.26, 0.5, 0.51, 1]);
    expect(relativeError(p25!, 1)).toBeLessThanOrEqual(BUCKET_ERROR);
    expect(relativeError(p26!, 10)).toBeLessThanOrEqual(BUCKET_ERROR);
    expect(relativeError(p50!, 10)).toBeLessThanOrEqual(BUCKET_ERROR);
    expect(relativeError(p51!, 100)).toBeLessThanOrEqual(BUCKET_ERROR);
    expect(relativeError(p100!, 1_000)).toBeLessThanOrEqual(BUCKET_ERROR);
  });

  it("answers the percentiles in the order asked", () => {
    const h = histogramOf([1, 10, 100, 1_000]);
    const [high, low] = percentiles(h, [1, 0.25]);
    expect(high!).toBeGreaterThan(low!);
  });

  it("answers 0 for latencies under the minimum (bucket 0)", () => {
    expect(percentiles(histogramOf([0, 0, 0.001]), [0.5, 0.99])).toEqual([0, 0]);
  });
});

describe("histogram accuracy against exact percentiles of raw data", () => {
  it("keeps p50, p95 and p99 within 5 % of exact on 200,000 skewed latencies (lognormal with a Pareto tail)", () => {
    const values = skewedLatencies(20_260_310);
    const sorted = ascending(values);
    // The data set is as skewed as intended: a long tail far above the median.
    expect(nearestRank(sorted, 0.99) / nearestRank(sorted, 0.5)).toBeGreaterThan(15);
    expect(sorted.at(-1)! / nearestRank(sorted, 0.5)).toBeGreaterThan(1_000);
    const [p50, p95, p99] = percentiles(histogramOf(values), [0.5, 0.95, 0.99]);
    expect(relativeError(p50!, nearestRank(sorted, 0.5))).toBeLessThan(0.05);
    expect(relativeError(p95!, nearestRank(sorted, 0.95))).toBeLessThan(0.05);
    expect(relativeError(p99!, nearestRank(sorted, 0.99))).toBeLessThan(0.05);
  });

  it("keeps p50, p95 and p99 within 5 % of exact on 200,000 bimodal latencies", () => {
    const values = bimodalLatencies(8_675_309);
    const sorted = ascending(values);
    const [p50, p75, p95, p99] = percentiles(histogramOf(values), [0.5, 0.75, 0.95, 0.99]);
    expect(relativeError(p50!, nearestRank(sorted, 0.5))).toBeLessThan(0.05);
    expect(relativeError(p75!, nearestRank(sorted, 0.75))).toBeLessThan(0.05); // just past the gap, in the slow mode
    expect(relativeError(p95!, nearestRank(sorted, 0.95))).toBeLessThan(0.05);
    expect(relativeError(p99!, nearestRank(sorted, 0.99))).toBeLessThan(0.05);
  });

  it("stays within √G − 1 of exact at every whole percentile from 1 to 99 of the skewed set", () => {
    const values = skewedLatencies(99, 50_000);
    const sorted = ascending(values);
    const ps = Array.from({ length: 99 }, (_, i) => (i + 1) / 100);
    const answered = percentiles(histogramOf(values), ps);
    const worst = Math.max(...ps.map((p, i) => relativeError(answered[i]!, nearestRank(sorted, p))));
    expect(worst).toBeLessThanOrEqual(BUCKET_ERROR + 1e-12);
  });
});
