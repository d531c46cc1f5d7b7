/**
 * google.api.http path templates: parse, match, format and order them.
 * Grammar and decoding rules: "Path template syntax" in google/api/http.proto
 * (node_modules/google-proto-files/google/api/http.proto).
 *
 *     Template = "/" Segments [ Verb ] ;   Segment  = "*" | "**" | LITERAL | Variable ;
 *     Variable = "{" FieldPath [ "=" Segments ] "}" ;   Verb = ":" LITERAL ;
 */

/** One template segment. Variables are not segments: they span a range of these. */
export type Segment =
  | { readonly kind: "literal"; readonly value: string }
  | { readonly kind: "wildcard" }
  | { readonly kind: "deep_wildcard" };

/** A `{field.path=...}` capture over `segments[start, end)`; `end` is -1 when it ends with `**`. */
export interface Variable {
  readonly fieldPath: readonly string[];
  readonly start: number;
  readonly end: number;
}

/** A parsed template. `verb` is the custom verb without its ":"; `source` the text parsed. */
export interface PathTemplate {
  readonly segments: readonly Segment[];
  readonly variables: readonly Variable[];
  readonly verb?: string;
  readonly source: string;
}

/** A malformed template: `reason` says what is wrong, `position` the 0-based character where. */
export class PathTemplateError extends Error {
  override name = "PathTemplateError";
  constructor(readonly reason: string, readonly position: number, readonly template: string) {
    super(`invalid path template "${template}": ${reason} at ${position}`);
  }
}

/** RFC 3986 pchar minus "%" (handled as an escape) and "*" (a wildcard here). */
const LITERAL_CHAR = /^[A-Za-z0-9\-._~!$&'()+,;=:@]$/;
const PERCENT_ESCAPE = /^%[0-9A-Fa-f]{2}$/;
const FIELD_CHAR = /^[A-Za-z0-9_.]$/;
const FIELD_PATH = /^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$/;

interface ParseState {
  readonly src: string;
  pos: number;
  end: number;
  readonly segments: Segment[];
  readonly variables: Variable[];
  deepAt: number;
}

/**
 * Parses `template` per http.proto's grammar. A ":" in the last top-level
 * segment starts the verb; elsewhere ":" is an ordinary literal character.
 * Throws PathTemplateError on any deviation, e.g. `"**" must be the last segment`.
 */
export function parsePathTemplate(template: string): PathTemplate {
  const s: ParseState = { src: template, pos: 0, end: template.length, segments: [], variables: [], deepAt: -1 };
  if (!template.startsWith("/")) fail(s, 0, 'template must start with "/"');
  const verbAt = findVerbSeparator(template);
  s.pos = 1;
  s.end = verbAt ?? template.length;
  parseSegments(s, false);
  if (verbAt === undefined) return { segments: s.segments, variables: s.variables, source: template };
  s.pos = verbAt + 1;
  s.end = template.length;
  const verb = parseLiteral(s);
  if (s.pos < s.end) fail(s, s.pos, `unexpected ${JSON.stringify(template[s.pos])}`);
  if (verb === "") fail(s, s.pos, "empty verb");
  return { segments: s.segments, variables: s.variables, verb, source: template };
}

/** Index of the ":" opening the verb: the first one outside braces after the last top-level "/". */
function findVerbSeparator(src: string): number | undefined {
  let depth = 0;
  let colon: number | undefined;
  for (let i = 0; i < src.length; i++) {
    const c = src[i];
    if (c === "{") depth++;
    else if (c === "}") depth = Math.max(0, depth - 1);
    else if (depth === 0 && c === "/") colon = undefined;
    else if (depth === 0 && c === ":" && colon === undefined) colon = i;
  }
  return colon;
}

function fail(s: ParseState, position: number, reason: string): never {
  throw new PathTemplateError(reason, position, s.src);
}

/** `Segments = Segment { "/" Segment }`; inside a variable it stops before the closing "}". */
function parseSegments(s: ParseState, inVariable: boolean): void {
  for (;;) {
    parseSegment(s, inVariable);
    if (s.pos >= s.end) return;
    const c = s.src[s.pos];
    if (inVariable && c === "}") return;
    if (c !== "/") fail(s, s.pos, `unexpected ${JSON.stringify(c)}`);
    if (s.segments.at(-1)?.kind === "deep_wildcard") fail(s, s.deepAt, '"**" must be the last segment');
    s.pos++;
  }
}

function parseSegment(s: ParseState, inVariable: boolean): void {
  const c = s.src[s.pos];
  if (s.pos >= s.end || c === "/" || (inVariable && c === "}")) fail(s, s.pos, "empty segment");
  if (c === "{") {
    if (inVariable) fail(s, s.pos, "nested variables are not allowed");
    parseVariable(s);
  } else if (c === "*") {
    const deep = s.src[s.pos + 1] === "*" && s.pos + 1 < s.end;
    if (deep) s.deepAt = s.pos;
    s.segments.push(deep ? { kind: "deep_wildcard" } : { kind: "wildcard" });
    s.pos += deep ? 2 : 1;
  } else {
    const value = parseLiteral(s);
    if (value === "") fail(s, s.pos, `unexpected ${JSON.stringify(c)}`);
    s.segments.push({ kind: "literal", value });
  }
}

/** Reads LITERAL characters (percent escapes included) up to the first other character. */
function parseLiteral(s: ParseState): string {
  const start = s.pos;
  while (s.pos < s.end) {
    const c = s.src[s.pos] ?? "";
    if (c === "%") {
      if (s.pos + 3 > s.end || !PERCENT_ESCAPE.test(s.src.slice(s.pos, s.pos + 3))) {
        fail(s, s.pos, "invalid percent-encoding");
      }
      s.pos += 3;
    } else if (LITERAL_CHAR.test(c)) s.pos++;
    else break;
  }
  return s.src.slice(start, s.pos);
}

/** `"{" FieldPath [ "=" Segments ] "}"`; `{x}` is shorthand for `{x=*}`. */
function parseVariable(s: ParseState): void {
  const open = s.pos++;
  while (s.pos < s.end && FIELD_CHAR.test(s.src[s.pos] ?? "")) s.pos++;
  const name = s.src.slice(open + 1, s.pos);
  if (s.pos >= s.end) fail(s, open, 'unclosed "{"');
  if (name === "" && s.src[s.pos] === "}") fail(s, open, "empty variable");
  if (name === "") fail(s, s.pos, `unexpected ${JSON.stringify(s.src[s.pos])}`);
  if (!FIELD_PATH.test(name)) fail(s, open + 1, `invalid field path ${JSON.stringify(name)}`);
  if (s.variables.some((v) => v.fieldPath.join(".") === name)) fail(s, open, `variable "${name}" is declared twice`);
  const start = s.segments.length;
  if (s.src[s.pos] === "=") {
    s.pos++;
    parseSegments(s, true);
  } else if (s.pos < s.end && s.src[s.pos] !== "}") {
    fail(s, s.pos, `unexpected ${JSON.stringify(s.src[s.pos])}`);
  } else {
    s.segments.push({ kind: "wildcard" });
  }
  if (s.pos >= s.end) fail(s, open, 'unclosed "{"');
  s.pos++;
  const end = s.segments.at(-1)?.kind === "deep_wildcard" ? -1 : s.segments.length;
  s.variables.push({ fieldPath: name.split("."), start, end });
}

/**
 * Matches `path` (starting with "/", query string already removed) and returns
 * the bindings keyed by dotted field path, or undefined when it does not match.
 * With a verb, the path must end with `:verb`. Literals compare exactly; `*`
 * and variables never match an empty segment, so `/a/b/` does not match `/a/b`.
 * Values are percent-decoded per http.proto: single-segment variables fully;
 * multi-segment ones except "%2F"/"%2f", which are left unchanged. A malformed
 * escape in a bound value makes the path not match.
 */
export function matchPathTemplate(t: PathTemplate, path: string): Record<string, string> | undefined {
  const suffix = t.verb === undefined ? "" : `:${t.verb}`;
  if (!path.endsWith(suffix) || !path.startsWith("/")) return undefined;
  const parts = path.slice(1, path.length - suffix.length).split("/");
  if (parts.includes("")) return undefined;
  const deep = t.segments.at(-1)?.kind === "deep_wildcard";
  const fixed = deep ? t.segments.length - 1 : t.segments.length;
  if (deep ? parts.length < fixed : parts.length !== fixed) return undefined;
  for (let i = 0; i < fixed; i++) {
    const seg = t.segments[i];
    if (seg?.kind === "literal" && seg.value !== parts[i]) return undefined;
  }
  const bindings: Record<string, string> = {};
  for (const v of t.variables) {
    const multi = v.end === -1 || v.end - v.start > 1;
    const value = decodeBinding(parts.slice(v.start, v.end === -1 ? parts.length : v.end).join("/"), multi);
    if (value === undefined) return undefined;
    bindings[v.fieldPath.join(".")] = value;
  }
  return bindings;
}

function decodeBinding(raw: string, multiSegment: boolean): string | undefined {
  try {
    if (!multiSegment) return decodeURIComponent(raw);
    // The capture group keeps each "%2F" in the split result (odd indexes) as written.
    return raw.split(/(%2F)/i).map((piece, i) => (i % 2 === 1 ? piece : decodeURIComponent(piece))).join("");
  } catch {
    return undefined;
  }
}

/** Canonical text of `t`: `{x=*}` is written `{x}`; otherwise segments are written as parsed. */
export function formatPathTemplate(t: PathTemplate): string {
  const out: string[] = [];
  for (let i = 0; i < t.segments.length; ) {
    const v = t.variables.find((x) => x.start === i);
    const end = v === undefined ? i + 1 : v.end === -1 ? t.segments.length : v.end;
    const inner = t.segments.slice(i, end).map(formatSegment).join("/");
    const name = v?.fieldPath.join(".");
    out.push(v === undefined ? inner : inner === "*" ? `{${name}}` : `{${name}=${inner}}`);
    i = end;
  }
  return `/${out.join("/")}${t.verb === undefined ? "" : `:${t.verb}`}`;
}

function formatSegment(seg: Segment): string {
  return seg.kind === "literal" ? seg.value : seg.kind === "wildcard" ? "*" : "**";
}

/** Rank of what a template has at a segment index; past its last segment it has "end". */
function rankAt(t: PathTemplate, i: number): number {
  const kind = t.segments[i]?.kind;
  return kind === "literal" ? 0 : kind === "wildcard" ? 1 : kind === undefined ? 2 : 3;
}

/**
 * Orders templates most specific first, for `templates.sort(comparePathTemplates)`:
 * 1. A template with a verb beats one without (the verb is split off the path
 *    before segments match, so `{id}` must not swallow `x:cancel`).
 * 2. At the first segment index where they differ, literal < `*` (variables
 *    count as their segments) < end of template < `**`: so literals beat
 *    wildcards, `*` beats `**`, more segments beat fewer, and `/a` beats `/a/**`.
 * Otherwise 0 (e.g. `/a/b` vs `/a/c`), so a stable sort keeps declaration order.
 */
export function comparePathTemplates(a: PathTemplate, b: PathTemplate): number {
  const verb = Number(b.verb !== undefined) - Number(a.verb !== undefined);
  if (verb !== 0) return verb;
  const n = Math.max(a.segments.length, b.segments.length);
  for (let i = 0; i < n; i++) {
    const diff = rankAt(a, i) - rankAt(b, i);
    if (diff !== 0) return diff;
  }
  return 0;
}
