import type { PathTemplate, Segment } from "../../lib/path-template.js";

/** One `{name}` of an OpenAPI path: a template variable, or a wildcard outside any variable. */
export interface PathVariable {
  /** The parameter name: `nameOf` the variable's field path, or `_segmentN` for an unnamed wildcard. */
  readonly name: string;
  /** The request field the value sets (dotted proto path); undefined for an unnamed wildcard. */
  readonly fieldPath: string | undefined;
  /** The segments it matches as written in the template (`*`, `projects/*`, `**`). */
  readonly matches: string;
  /** Anchored regular expression of the decoded value when it is more than one plain `*`. */
  readonly pattern: string | undefined;
  /** Whether it may span several segments (its slashes are sent unescaped). */
  readonly multiSegment: boolean;
}

/** A google.api.http template as an OpenAPI path. */
export interface OpenApiPath {
  /** `/v1/{name}/items:tail`: each variable as `{name}`, the custom verb kept as written. */
  readonly path: string;
  /**
   * The path with every variable written `{}`. OpenAPI treats paths of the
   * same shape as one path whatever their parameter names, so it is the key
   * paths are merged by.
   */
  readonly shape: string;
  readonly variables: readonly PathVariable[];
}

/**
 * Converts a parsed template (lib/path-template.ts) to an OpenAPI path:
 * `{id}` stays, `{name=projects/*}` and `{path=**}` become `{name}` and
 * `{path}` (what they match kept in `matches` and `pattern`), an unnamed `*`
 * or `**` becomes `{_segmentN}` (N counts segments from 1), and a custom
 * verb stays literally (`/api/v1/logs:tail`). `nameOf` names a variable by
 * its proto field path; by default the path dotted as written.
 */
export function openApiPath(t: PathTemplate, nameOf = (fieldPath: readonly string[]) => fieldPath.join(".")): OpenApiPath {
  const path: string[] = [];
  const shape: string[] = [];
  const variables: PathVariable[] = [];
  for (let i = 0; i < t.segments.length; ) {
    const v = t.variables.find((x) => x.start === i);
    const end = v === undefined ? i + 1 : v.end === -1 ? t.segments.length : v.end;
    const inner = t.segments.slice(i, end);
    const first = inner[0];
    if (v === undefined && first?.kind === "literal") {
      path.push(first.value);
      shape.push(first.value);
    } else {
      const name = v === undefined ? `_segment${i + 1}` : nameOf(v.fieldPath);
      variables.push(variableOf(name, v?.fieldPath.join("."), inner));
      path.push(`{${name}}`);
      shape.push("{}");
    }
    i = end;
  }
  const verb = t.verb === undefined ? "" : `:${t.verb}`;
  return { path: `/${path.join("/")}${verb}`, shape: `/${shape.join("/")}${verb}`, variables };
}

function variableOf(name: string, fieldPath: string | undefined, inner: readonly Segment[]): PathVariable {
  const matches = inner.map((s) => (s.kind === "literal" ? s.value : s.kind === "wildcard" ? "*" : "**")).join("/");
  const multiSegment = inner.length > 1 || inner[0]?.kind === "deep_wildcard";
  return { name, fieldPath, matches, pattern: matches === "*" ? undefined : segmentsPattern(inner), multiSegment };
}

/**
 * The values a run of segments binds, decoded as the matcher decodes them:
 * `*` is one non-empty segment, `**` zero or more (lib/path-template.ts
 * matchPathTemplate), literals match themselves.
 */
function segmentsPattern(inner: readonly Segment[]): string {
  let re = "";
  inner.forEach((s, i) => {
    const sep = i === 0 ? "" : "/";
    if (s.kind === "deep_wildcard") re += i === 0 ? "(?:[^/]+(?:/[^/]+)*)?" : "(?:/[^/]+)*";
    else re += sep + (s.kind === "wildcard" ? "[^/]+" : escapeRegExp(s.value));
  });
  return `^${re}$`;
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
