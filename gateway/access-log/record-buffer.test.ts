import { describe, expect, it } from "vitest";
import { createRecordBuffer } from "./record-buffer.js";

const contents = <T>(b: { size: number; at(i: number): T }) => Array.from({ length: b.size }, (_, i) => b.at(i));

describe("createRecordBuffer", () => {
  it("refuses a push once full and keeps what it holds", () => {
    const b = createRecordBuffer<number>(3);
    expect([1, 2, 3, 4].map((n) => b.push(n))).toEqual([true, true, true, false]);
    expect(contents(b)).toEqual([1, 2, 3]);
    expect(b.pushed).toBe(3);
  });

  it("keeps FIFO order across the ring's wrap-around", () => {
    const b = createRecordBuffer<number>(4);
    for (let n = 0; n < 4; n++) b.push(n);
    b.shift(3);
    for (let n = 4; n < 7; n++) b.push(n);
    expect(contents(b)).toEqual([3, 4, 5, 6]);
  });

  it("removes one item from the middle, the items before it keeping their order", () => {
    const b = createRecordBuffer<string>(5);
    for (const s of ["x", "y"]) b.push(s);
    b.shift(2); // the head is now at slot 2, so the items below wrap
    for (const s of ["a", "b", "c", "d", "e"]) b.push(s);
    expect(b.removeAt(3)).toBe("d");
    expect(contents(b)).toEqual(["a", "b", "c", "e"]);
    expect(b.push("f")).toBe(true);
    expect(contents(b)).toEqual(["a", "b", "c", "e", "f"]);
  });

  it("answers the sequence number of the oldest item, or the next one when empty", () => {
    const b = createRecordBuffer<string>(4);
    expect(b.headSeq()).toBe(0);
    for (const s of ["a", "b", "c"]) b.push(s);
    b.removeAt(0);
    expect(b.headSeq()).toBe(1);
    b.removeAt(1);
    expect(b.headSeq()).toBe(1);
    b.shift(1);
    expect(b.headSeq()).toBe(3);
    expect(b.size).toBe(0);
  });

  it("shifts at most what it holds", () => {
    const b = createRecordBuffer<number>(2);
    b.push(1);
    b.shift(5);
    expect(b.size).toBe(0);
    expect(b.push(2)).toBe(true);
    expect(contents(b)).toEqual([2]);
  });

  it("throws RangeError for a position outside what it holds and for a bad capacity", () => {
    const b = createRecordBuffer<number>(2);
    b.push(1);
    expect(() => b.at(1)).toThrow(RangeError);
    expect(() => b.removeAt(-1)).toThrow(RangeError);
    expect(() => createRecordBuffer(0)).toThrow(RangeError);
  });
});
