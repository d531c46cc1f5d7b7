import type { Duration } from "@bufbuild/protobuf/wkt";
import type { Violation } from "./gateway-config-error.js";
import type { Resolved } from "./resolved-config.js";

/** Collects violations; each rule reports with the path it was given. */
export interface Checker {
  readonly violations: Violation[];
  add(path: string, message: string): void;
  /** A duration that must be longer than zero. */
  positive(d: Resolved<Duration>, path: string): void;
  /** A duration that may be zero but not negative. */
  nonNegative(d: Resolved<Duration>, path: string): void;
  /** An integer of at least `min` (and at most `max`, when given). */
  within(n: number, path: string, min: number, max?: number): void;
}

/** A Checker starting with no violations. */
export function createChecker(): Checker {
  const violations: Violation[] = [];
  const add = (path: string, message: string) => void violations.push({ path, message });
  const sign = (d: Resolved<Duration>) => (d.seconds > 0n || (d.seconds === 0n && d.nanos > 0) ? 1 : d.seconds < 0n || d.nanos < 0 ? -1 : 0);
  return {
    violations,
    add,
    positive(d, path) {
      if (sign(d) <= 0) add(path, `must be longer than 0s, got ${formatDuration(d)}`);
    },
    nonNegative(d, path) {
      if (sign(d) < 0) add(path, `must not be negative, got ${formatDuration(d)}`);
    },
    within(n, path, min, max) {
      if (n < min) add(path, `must be at least ${min}, got ${n}`);
      else if (max !== undefined && n > max) add(path, `must be at most ${max}, got ${n}`);
    },
  };
}

/** Seconds as proto3 JSON writes them: "1.5s". */
export function formatDuration(d: Resolved<Duration>): string {
  return `${Number(d.seconds) + d.nanos / 1e9}s`;
}

/** Compares two durations: negative, zero or positive like a sort comparator. */
export function compareDurations(a: Resolved<Duration>, b: Resolved<Duration>): number {
  return a.seconds === b.seconds ? a.nanos - b.nanos : a.seconds < b.seconds ? -1 : 1;
}
