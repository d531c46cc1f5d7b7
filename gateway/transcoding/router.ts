import { comparePathTemplates, type PathTemplate } from "../../lib/path-template.js";
import type { HttpBinding } from "./bindings.js";
import { canonicalTemplate, matchCanonical, type CanonicalPath } from "./path.js";

/** The binding a request reaches, with its path variables (dotted proto field path → decoded value). */
export interface RouteMatch {
  readonly kind: "match";
  readonly binding: HttpBinding;
  readonly vars: Readonly<Record<string, string>>;
}

/** The path exists but not for this verb: the server answers 405 with `Allow: <allowed>`. */
export interface MethodNotAllowed {
  readonly kind: "method_not_allowed";
  /** Verbs that do match the path, sorted. */
  readonly allowed: readonly string[];
}

/** Finds the binding of a request; built once at startup by createRouter. */
export interface Router {
  /**
   * The binding for `verb` (exact, case-sensitive) and a canonical path, or
   * MethodNotAllowed, or undefined when no template matches the path (404).
   * When several templates match, the most specific wins (comparePathTemplates:
   * custom verb first, then literal over `*` over `**` at the first segment
   * where they differ); equally specific ones cannot both match once
   * identical bindings are refused, so the answer is deterministic.
   */
  match(verb: string, path: CanonicalPath): RouteMatch | MethodNotAllowed | undefined;
}

/** Two bindings that match exactly the same requests. */
export class RouteConflictError extends Error {
  override name = "RouteConflictError";
  constructor(readonly conflicts: readonly string[]) {
    super(`conflicting HTTP bindings:\n  - ${conflicts.join("\n  - ")}`);
  }
}

interface Route {
  readonly binding: HttpBinding;
  readonly template: PathTemplate;
  /** The number of path segments the template matches, when fixed (no `**`): a cheap first test. */
  readonly segments: number | undefined;
  /** Literal segments by position (decoded, as in a CanonicalPath), before any `**` and the custom verb's segment: a second cheap test. */
  readonly literals: readonly (readonly [number, string])[];
}

/**
 * Indexes bindings by verb, most specific template first. Throws
 * RouteConflictError listing every pair with the same verb and equivalent
 * templates (equal once variable names are ignored and literals are in
 * canonical encoding, e.g. `/a/{id}` and `/a/{name}`).
 */
export function createRouter(bindings: readonly HttpBinding[]): Router {
  const byVerb = new Map<string, Route[]>();
  const seen = new Map<string, HttpBinding>();
  const conflicts: string[] = [];
  for (const binding of bindings) {
    const template = canonicalTemplate(binding.template);
    const key = `${binding.verb} ${shapeOf(template)}`;
    const other = seen.get(key);
    if (other !== undefined) conflicts.push(`${describe(other)} and ${describe(binding)} are both ${key}`);
    seen.set(key, binding);
    const routes = byVerb.get(binding.verb) ?? [];
    const deepAt = template.segments.findIndex((x) => x.kind === "deep_wildcard");
    const checkable = deepAt >= 0 ? deepAt : template.verb === undefined ? template.segments.length : template.segments.length - 1;
    const literals = template.segments.slice(0, checkable).flatMap((x, i) => (x.kind === "literal" ? [[i, decodeURIComponent(x.value)] as const] : []));
    routes.push({ binding, template, segments: deepAt >= 0 ? undefined : template.segments.length, literals });
    byVerb.set(binding.verb, routes);
  }
  if (conflicts.length > 0) throw new RouteConflictError(conflicts);
  // Array.prototype.sort is stable: equally specific templates keep declaration order.
  for (const routes of byVerb.values()) routes.sort((a, b) => comparePathTemplates(a.template, b.template));

  const first = (routes: readonly Route[] | undefined, path: CanonicalPath): RouteMatch | undefined => {
    for (const route of routes ?? []) {
      if (route.segments !== undefined && route.segments !== path.segments.length) continue;
      if (!route.literals.every(([i, value]) => path.segments[i] === value)) continue;
      const vars = matchCanonical(route.template, path);
      if (vars !== undefined) return { kind: "match", binding: route.binding, vars };
    }
    return undefined;
  };
  return {
    match(verb, path) {
      const found = first(byVerb.get(verb), path);
      if (found !== undefined) return found;
      const allowed = [...byVerb.keys()].filter((v) => v !== verb && first(byVerb.get(v), path) !== undefined);
      return allowed.length === 0 ? undefined : { kind: "method_not_allowed", allowed: allowed.sort() };
    },
  };
}

/**
 * The template without variable names: `/a/{id}:x` → `/a/{*}:x`. Wildcards
 * are written in braces, which a canonical literal never contains.
 */
function shapeOf(t: PathTemplate): string {
  const segments = t.segments.map((s) => (s.kind === "literal" ? s.value : s.kind === "wildcard" ? "{*}" : "{**}"));
  return `/${segments.join("/")}${t.verb === undefined ? "" : `:${t.verb}`}`;
}

function describe(b: HttpBinding): string {
  return `${b.method.parent.typeName}.${b.method.name} (${b.verb} ${b.template.source})`;
}
