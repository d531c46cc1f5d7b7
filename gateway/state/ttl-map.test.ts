import { describe, expect, it } from "vitest";
import { createTtlMap } from "./ttl-map.js";

function setup(maxEntries: number) {
  let at = 1_000;
  const dropped: string[] = [];
  const map = createTtlMap<number>({ now: () => at, maxEntries, onDrop: (key) => dropped.push(key) });
  return { map, dropped, advance: (ms: number) => void (at += ms), now: () => at };
}

describe("createTtlMap", () => {
  it("answers a value until its expiry instant, and undefined from then on", () => {
    const { map, advance, now } = setup(10);
    map.set("a", 1, now() + 100);
    advance(99);
    expect(map.get("a")).toBe(1);
    advance(1);
    expect(map.get("a")).toBeUndefined();
    expect(map.size).toBe(0);
  });

  it("evicts the oldest-written entry past maxEntries, a rewrite counting as new", () => {
    const { map, dropped, now } = setup(2);
    map.set("a", 1, now() + 1_000);
    map.set("b", 2, now() + 1_000);
    map.set("a", 3, now() + 1_000);
    map.set("c", 4, now() + 1_000);
    expect([map.get("a"), map.get("b"), map.get("c")]).toEqual([3, undefined, 4]);
    expect(dropped).toEqual(["a", "b"]);
  });

  it("sweeps expired entries on writes, so unread ones do not pile up below the cap", () => {
    const { map, advance, now } = setup(100_000);
    for (let i = 0; i < 10_000; i++) {
      map.set(`k${i}`, i, now() + 10);
      advance(1);
    }
    expect(map.size).toBeLessThanOrEqual(11);
  });

  it("tells on delete whether a live entry was there, dropping an expired one either way", () => {
    const { map, dropped, advance, now } = setup(10);
    map.set("live", 1, now() + 100);
    map.set("old", 2, now() + 10);
    advance(50);
    expect(map.delete("live")).toBe(true);
    expect(map.delete("old")).toBe(false);
    expect(map.delete("absent")).toBe(false);
    expect(dropped).toEqual(["live", "old"]);
  });

  it("drops every entry on clear", () => {
    const { map, dropped, now } = setup(10);
    map.set("a", 1, now() + 100);
    map.set("b", 2, now() + 100);
    map.clear();
    expect(map.size).toBe(0);
    expect(dropped).toEqual(["a", "b"]);
  });
});
