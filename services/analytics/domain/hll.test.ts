import { describe, expect, it } from "vitest";
import { seededRandom } from "../../../test/support/analytics-harness.js";
import { addToSketch, estimate, HLL_BITS, hash32, mergeSketch, registerOf, type Sketch } from "./hll.js";

/** `n` distinct user-id-like strings drawn from a seeded generator. */
function distinctValues(seed: number, n: number): string[] {
  const random = seededRandom(seed);
  const values = new Set<string>();
  while (values.size < n) values.add(`user-${Math.floor(random() * 2 ** 52).toString(36)}`);
  return [...values];
}

function sketchOf(values: Iterable<string>): Sketch {
  const s: Sketch = {};
  for (const v of values) addToSketch(s, v);
  return s;
}

const relativeError = (actual: number, exact: number) => Math.abs(actual - exact) / exact;

describe("HyperLogLog sketch", () => {
  it("estimates 0 for an empty sketch", () => {
    expect(estimate({})).toBe(0);
  });

  // Linear counting answers small sets nearly exactly; two values can still
  // share a register, so a miss of 2 at the top of the range is expected.
  it("counts fewer than 100 distinct values within ±2, at every size from 1 to 99", () => {
    const values = distinctValues(1, 99);
    const s: Sketch = {};
    const misses: string[] = [];
    values.forEach((v, i) => {
      addToSketch(s, v);
      if (Math.abs(estimate(s) - (i + 1)) > 2) misses.push(`${i + 1} counted as ${estimate(s)}`);
    });
    expect(misses, `sizes off by more than 2: ${misses.join(", ")}`).toEqual([]);
  });

  it("estimates 10,000 distinct values within 5 %", () => {
    expect(relativeError(estimate(sketchOf(distinctValues(10_000, 10_000))), 10_000)).toBeLessThan(0.05);
  });

  it("estimates 100,000 distinct values within 5 %", () => {
    expect(relativeError(estimate(sketchOf(distinctValues(100_000, 100_000))), 100_000)).toBeLessThan(0.05);
  });

  it("ignores repeated values: adding the same values again changes nothing", () => {
    const values = distinctValues(3, 5_000);
    const once = sketchOf(values);
    const twice = sketchOf([...values, ...values.slice().reverse(), ...values]);
    expect(twice).toEqual(once);
    expect(estimate(twice)).toBe(estimate(once));
  });

  it("merges two sketches into the sketch of the union of their values", () => {
    const values = distinctValues(4, 10_000);
    const a = sketchOf(values.slice(0, 6_000));
    const b = sketchOf(values.slice(4_000)); // overlaps a on 2,000 values
    const merged = mergeSketch({ ...a }, b);
    expect(merged).toEqual(sketchOf(values));
    expect(estimate(merged)).toBe(estimate(sketchOf(values)));
    expect(relativeError(estimate(merged), 10_000)).toBeLessThan(0.05);
  });

  it("merges in any order and with nothing to the same sketch", () => {
    const a = sketchOf(distinctValues(5, 300));
    const b = sketchOf(distinctValues(6, 300));
    expect(mergeSketch({ ...a }, b)).toEqual(mergeSketch({ ...b }, a));
    expect(mergeSketch({ ...a }, undefined)).toEqual(a);
    expect(mergeSketch({ ...a }, a)).toEqual(a);
  });

  it("keeps registers sparse: at most 2^bits of them, each a rank from 1 to 33 − bits", () => {
    const s = sketchOf(distinctValues(7, 20_000));
    const entries = Object.entries(s);
    expect(entries.length).toBeLessThanOrEqual(2 ** HLL_BITS);
    for (const [i, r] of entries) {
      expect(Number(i)).toBeGreaterThanOrEqual(0);
      expect(Number(i)).toBeLessThan(2 ** HLL_BITS);
      expect(r).toBeGreaterThanOrEqual(1);
      expect(r).toBeLessThanOrEqual(33 - HLL_BITS);
    }
  });

  it("hashes deterministically to an unsigned 32-bit value and one register", () => {
    expect(hash32("alice")).toBe(hash32("alice"));
    expect(hash32("alice")).not.toBe(hash32("bob"));
    expect(Number.isInteger(hash32("alice")) && hash32("alice") >= 0 && hash32("alice") < 2 ** 32).toBe(true);
    expect(registerOf("alice")).toEqual(registerOf("alice"));
  });
});
