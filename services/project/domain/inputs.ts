import { createViolations } from "../../../lib/errors.js";

type Violations = ReturnType<typeof createViolations>;

/** Page and limit as the list RPCs take them: page from 1 (0 → 1), limit 1..100 (0 → 20). */
export function pageOf(v: Violations, page: number, limit: number): { page: number; limit: number; offset: number } {
  if (page < 0) v.add("page", "must be 1 or more");
  if (limit < 0 || limit > 100) v.add("limit", "must be between 1 and 100");
  const p = page > 0 ? page : 1;
  const l = limit > 0 ? Math.min(limit, 100) : 20;
  return { page: p, limit: l, offset: (p - 1) * l };
}

/** A trimmed name of 1..max characters. */
export function nameOf(v: Violations, field: string, value: string, max = 100): string {
  const name = value.trim();
  if (name.length < 1 || name.length > max) v.add(field, `must be 1 to ${max} characters`);
  return name;
}

/** Paths of an update mask, checked against the fields that may change; empty when none sent. */
export function maskOf(v: Violations, paths: readonly string[] | undefined, allowed: readonly string[]): Set<string> {
  const set = new Set<string>();
  for (const path of paths ?? []) {
    if (allowed.includes(path)) set.add(path);
    else v.add("update_mask", `unknown field "${path}"; allowed: ${allowed.join(", ")}`);
  }
  return set;
}
