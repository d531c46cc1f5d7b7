import type { PathTemplate, Segment } from "../../lib/path-template.js";
import type { HttpBinding } from "../transcoding/bindings.js";
import { canonicalTemplate } from "../transcoding/path.js";

/**
 * A route's identity across schema versions: its verb and template shape
 * (variable names left out, literals canonical), e.g. `GET /a/{*}:x`.
 */
export function routeKey(b: HttpBinding): string {
  const t = canonicalTemplate(b.template);
  const segments = t.segments.map((s) => (s.kind === "literal" ? s.value : s.kind === "wildcard" ? "{*}" : "{**}"));
  return `${b.verb} /${segments.join("/")}${t.verb === undefined ? "" : `:${t.verb}`}`;
}

/**
 * Each route of `mine` whose path template can match a path that a route of
 * `theirs` matches, whatever the verbs (a reflected service may neither take
 * requests from nor add methods to another's paths), described with both
 * RPCs. Conservative: a pair is reported unless the templates provably
 * differ (a literal against another literal, a different custom verb, a
 * different number of segments without `**`).
 */
export function overlappingRoutes(mine: readonly HttpBinding[], theirs: readonly HttpBinding[]): string[] {
  const problems: string[] = [];
  for (const a of mine) {
    for (const b of theirs) {
      if (templatesOverlap(a.template, b.template)) problems.push(`${describe(a)} overlaps ${describe(b)}`);
    }
  }
  return problems;
}

/** Whether some path matches both templates (lib/path-template semantics; `**` also matches no segment). */
export function templatesOverlap(x: PathTemplate, y: PathTemplate): boolean {
  const a = canonicalTemplate(x);
  const b = canonicalTemplate(y);
  if (a.verb === b.verb) return segmentsOverlap(a.segments, b.segments);
  if (a.verb !== undefined && b.verb !== undefined) return false;
  // Only one has a custom verb: the other's last segment must be able to end with ":verb".
  const [verbed, plain] = a.verb !== undefined ? [a, b] : [b, a];
  const suffix = `:${verbed.verb}`;
  const last = plain.segments.at(-1);
  if (last?.kind !== "literal") return segmentsOverlap(verbed.segments, plain.segments);
  if (!last.value.endsWith(suffix)) return false;
  const stripped: Segment = { kind: "literal", value: last.value.slice(0, -suffix.length) };
  return segmentsOverlap(verbed.segments, [...plain.segments.slice(0, -1), stripped]);
}

function segmentsOverlap(a: readonly Segment[], b: readonly Segment[]): boolean {
  for (let i = 0; ; i++) {
    const x = a[i];
    const y = b[i];
    if (x?.kind === "deep_wildcard" || y?.kind === "deep_wildcard") return true;
    if (x === undefined || y === undefined) return x === y;
    if (x.kind === "literal" && y.kind === "literal" && x.value !== y.value) return false;
  }
}

function describe(b: HttpBinding): string {
  return `${b.verb} ${b.template.source} (${b.method.parent.typeName}/${b.method.name})`;
}
