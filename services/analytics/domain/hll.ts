/**
 * HyperLogLog (2^12 registers, standard error ≈ 1.6 %, within a couple for small
 * counts through linear counting) for unique users over any window: per-minute
 * sketches merge by taking each register's maximum, which a rollup update
 * expresses as `$max`, so counting distinct users over a day never reads
 * per-user data.
 */
export const HLL_BITS = 12;
const M = 1 << HLL_BITS;

/** Sparse registers: index → rank, as stored under `u.<i>`. */
export type Sketch = Record<string, number>;

/** 32-bit FNV-1a followed by murmur3's finalizer for avalanche. */
export function hash32(value: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < value.length; i++) {
    h ^= value.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** The register and rank `value` sets. */
export function registerOf(value: string): [index: number, rank: number] {
  const h = hash32(value);
  const index = h >>> (32 - HLL_BITS);
  const rest = (h << HLL_BITS) >>> 0;
  const rank = rest === 0 ? 32 - HLL_BITS + 1 : Math.clz32(rest) + 1;
  return [index, rank];
}

/** Adds `value` to a sketch. */
export function addToSketch(s: Sketch, value: string): void {
  const [i, r] = registerOf(value);
  if ((s[i] ?? 0) < r) s[i] = r;
}

/** Merges `from` into `into` (register-wise maximum). */
export function mergeSketch(into: Sketch, from: Sketch | undefined): Sketch {
  if (from) for (const [i, r] of Object.entries(from)) if ((into[i] ?? 0) < r) into[i] = r;
  return into;
}

/** Estimated number of distinct values added. */
export function estimate(s: Sketch): number {
  let sum = 0;
  let zeros = M;
  for (const r of Object.values(s)) {
    sum += 2 ** -r;
    zeros--;
  }
  sum += zeros;
  const alpha = 0.7213 / (1 + 1.079 / M);
  const raw = (alpha * M * M) / sum;
  if (raw <= 2.5 * M && zeros > 0) return Math.round(M * Math.log(M / zeros));
  return Math.round(raw);
}
