import type { createViolations } from "../../../lib/errors.js";

type Violations = ReturnType<typeof createViolations>;

export type Interval = "minute" | "hour" | "day";

const MS: Record<Interval, number> = { minute: 60_000, hour: 3_600_000, day: 86_400_000 };
export const MAX_BUCKETS = 1440;

/** The analytics window: `to` defaults to now, `from` to 24 h before `to`; rollups are per minute, so both snap to minutes. */
export function windowOf(v: Violations, from: Date | undefined, to: Date | undefined, now: Date): { from: Date; to: Date } {
  const floor = (d: Date) => new Date(Math.floor(d.getTime() / MS.minute) * MS.minute);
  const ceil = (d: Date) => new Date(Math.ceil(d.getTime() / MS.minute) * MS.minute);
  const end = ceil(to ?? now);
  // The default window is 24 h back from the snapped end, so it holds
  // exactly 1440 minutes.
  const start = from ? floor(from) : new Date(end.getTime() - MS.day);
  if ((from && to && from.getTime() >= to.getTime()) || start.getTime() >= end.getTime()) v.add("from", "must be before to");
  return { from: start, to: end };
}

/** The bucket interval: minute, hour (default) or day. */
export function intervalOf(v: Violations, value: string): Interval {
  const interval = value || "hour";
  if (Object.hasOwn(MS, interval)) return interval as Interval;
  v.add("interval", "must be minute, hour or day");
  return "hour";
}

/** Bucket starts on UTC boundaries covering [from, to); at most MAX_BUCKETS. */
export function bucketStarts(v: Violations, from: Date, to: Date, interval: Interval): number[] {
  const step = MS[interval];
  const first = Math.floor(from.getTime() / step) * step;
  const count = Math.ceil((to.getTime() - first) / step);
  if (count > MAX_BUCKETS) {
    v.add("interval", `the window holds ${count} ${interval} buckets; at most ${MAX_BUCKETS}: use a longer interval or a shorter window`);
    return [];
  }
  return Array.from({ length: Math.max(0, count) }, (_, i) => first + i * step);
}

/** Start of the bucket a time falls in. */
export function bucketStart(t: Date, interval: Interval): number {
  return Math.floor(t.getTime() / MS[interval]) * MS[interval];
}

/** `limit`: default 10, 1..100. */
export function limitOf(v: Violations, limit: number): number {
  if (limit < 0 || limit > 100) v.add("limit", "must be between 1 and 100");
  return limit > 0 ? Math.min(limit, 100) : 10;
}
