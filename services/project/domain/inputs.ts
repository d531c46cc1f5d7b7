import type { createViolations } from "../../../lib/errors.js";

export { pageOf } from "../../../lib/paging.js";

type Violations = ReturnType<typeof createViolations>;

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
