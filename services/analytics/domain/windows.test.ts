import { describe, expect, it } from "vitest";
import { createViolations } from "../../../lib/errors.js";
import { bucketStart, bucketStarts, intervalOf, limitOf, MAX_BUCKETS, windowOf } from "./windows.js";

const MINUTE = 60_000;
const HOUR = 3_600_000;
const DAY = 86_400_000;
const d = (iso: string) => new Date(iso);
const fields = (v: ReturnType<typeof createViolations>) => v.list.map((x) => x.field);

describe("windowOf", () => {
  it("defaults to to = now and from = 24 h before it", () => {
    const v = createViolations();
    const now = d("2026-03-10T12:00:00Z");
    expect(windowOf(v, undefined, undefined, now)).toEqual({ from: new Date(now.getTime() - DAY), to: now });
    expect(v.list).toEqual([]);
  });

  it("defaults from to 24 h before a given to", () => {
    const v = createViolations();
    expect(windowOf(v, undefined, d("2026-03-05T00:00:00Z"), d("2026-03-10T12:00:00Z")))
      .toEqual({ from: d("2026-03-04T00:00:00Z"), to: d("2026-03-05T00:00:00Z") });
  });

  it("defaults to to now when only from is given", () => {
    const v = createViolations();
    expect(windowOf(v, d("2026-03-10T10:00:00Z"), undefined, d("2026-03-10T12:00:00Z")))
      .toEqual({ from: d("2026-03-10T10:00:00Z"), to: d("2026-03-10T12:00:00Z") });
  });

  it("snaps from down and to up to whole minutes, so partial minutes are covered", () => {
    const v = createViolations();
    expect(windowOf(v, d("2026-03-10T10:15:42.123Z"), d("2026-03-10T11:20:00.001Z"), d("2026-03-10T12:00:00Z")))
      .toEqual({ from: d("2026-03-10T10:15:00Z"), to: d("2026-03-10T11:21:00Z") });
  });

  it("names from when it is not before to", () => {
    for (const [from, to] of [
      ["2026-03-10T10:00:00Z", "2026-03-10T10:00:00Z"], ["2026-03-10T11:00:00Z", "2026-03-10T10:00:00Z"],
      ["2026-03-10T10:00:40Z", "2026-03-10T10:00:20Z"], // after to within one minute: snapping alone would hide it
    ] as const) {
      const v = createViolations();
      windowOf(v, d(from), d(to), d("2026-03-10T12:00:00Z"));
      expect(fields(v)).toEqual(["from"]);
    }
  });

  it("fits the default 24 h window by minute into the 1440-bucket limit when now is mid-minute", () => {
    const v = createViolations();
    const w = windowOf(v, undefined, undefined, d("2026-03-10T12:00:30Z"));
    expect(bucketStarts(v, w.from, w.to, "minute")).toHaveLength(MAX_BUCKETS);
    expect(v.list).toEqual([]);
  });
});

describe("intervalOf", () => {
  it("defaults to hour", () => {
    const v = createViolations();
    expect(intervalOf(v, "")).toBe("hour");
    expect(v.list).toEqual([]);
  });

  it.each(["minute", "hour", "day"] as const)("accepts %s", (interval) => {
    const v = createViolations();
    expect(intervalOf(v, interval)).toBe(interval);
    expect(v.list).toEqual([]);
  });

  it.each(["week", "HOUR", "1h", "minutes"])("names interval for %s", (interval) => {
    const v = createViolations();
    intervalOf(v, interval);
    expect(fields(v)).toEqual(["interval"]);
  });

  it.each(["toString", "constructor", "__proto__"])("names interval for %s (an Object member, not an interval)", (interval) => {
    const v = createViolations();
    intervalOf(v, interval);
    expect(fields(v)).toEqual(["interval"]);
  });
});

describe("bucketStarts", () => {
  it("starts minute buckets on UTC minutes, oldest first, covering [from, to)", () => {
    const v = createViolations();
    expect(bucketStarts(v, d("2026-03-10T10:00:00Z"), d("2026-03-10T10:03:00Z"), "minute"))
      .toEqual([0, 1, 2].map((m) => Date.parse("2026-03-10T10:00:00Z") + m * MINUTE));
  });

  it("starts hour buckets on UTC hours, the first one holding from", () => {
    const v = createViolations();
    expect(bucketStarts(v, d("2026-03-10T10:30:00Z"), d("2026-03-10T12:15:00Z"), "hour"))
      .toEqual([10, 11, 12].map((h) => Date.parse("2026-03-10T00:00:00Z") + h * HOUR));
  });

  it("starts day buckets at 00:00 UTC", () => {
    const v = createViolations();
    expect(bucketStarts(v, d("2026-03-08T18:00:00Z"), d("2026-03-10T06:00:00Z"), "day"))
      .toEqual(["2026-03-08", "2026-03-09", "2026-03-10"].map((day) => Date.parse(`${day}T00:00:00Z`)));
  });

  it("allows exactly 1440 buckets", () => {
    const v = createViolations();
    expect(bucketStarts(v, d("2026-03-10T00:00:00Z"), d("2026-03-11T00:00:00Z"), "minute")).toHaveLength(1_440);
    expect(v.list).toEqual([]);
  });

  it("names interval, suggesting a longer one, for more than 1440 buckets and answers none", () => {
    const v = createViolations();
    expect(bucketStarts(v, d("2026-03-10T00:00:00Z"), d("2026-03-11T00:01:00Z"), "minute")).toEqual([]);
    expect(fields(v)).toEqual(["interval"]);
    expect(v.list[0]!.description).toContain("1441");
  });
});

describe("bucketStart", () => {
  it.each([
    ["minute", "2026-03-10T10:15:42.123Z", "2026-03-10T10:15:00Z"],
    ["hour", "2026-03-10T10:15:42.123Z", "2026-03-10T10:00:00Z"],
    ["day", "2026-03-10T23:59:59.999Z", "2026-03-10T00:00:00Z"],
  ] as const)("floors to the %s in UTC", (interval, t, start) => {
    expect(bucketStart(d(t), interval)).toBe(Date.parse(start));
  });
});

describe("limitOf", () => {
  it("defaults 0 to 10", () => {
    const v = createViolations();
    expect(limitOf(v, 0)).toBe(10);
    expect(v.list).toEqual([]);
  });

  it.each([1, 55, 100])("accepts %i", (limit) => {
    const v = createViolations();
    expect(limitOf(v, limit)).toBe(limit);
    expect(v.list).toEqual([]);
  });

  it.each([-1, 101, 1_000])("names limit for %i", (limit) => {
    const v = createViolations();
    limitOf(v, limit);
    expect(fields(v)).toEqual(["limit"]);
  });
});
