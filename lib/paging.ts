import type { createViolations } from "./errors.js";

type Violations = ReturnType<typeof createViolations>;

/** Page and limit as list RPCs take them: page from 1 (0 → 1), limit 1..max (0 → 20). Bad values are field violations. */
export function pageOf(v: Violations, page: number, limit: number, max = 100): { page: number; limit: number; offset: number } {
  if (page < 0) v.add("page", "must be 1 or more");
  if (limit < 0 || limit > max) v.add("limit", `must be between 1 and ${max}`);
  const p = page > 0 ? page : 1;
  const l = limit > 0 ? Math.min(limit, max) : 20;
  return { page: p, limit: l, offset: (p - 1) * l };
}
