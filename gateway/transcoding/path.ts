import { matchPathTemplate, type PathTemplate, type Segment } from "../../lib/path-template.js";

/**
 * The one form of a request path that authorization, routing, rate limiting
 * and cache keys all see. `segments` are percent-decoded; `path` re-encodes
 * each of them canonically (see encodePathSegment), so two requests that
 * reach the same segments have the same `path`, and a "/" inside a segment
 * stays "%2F" there instead of becoming a boundary.
 */
export interface CanonicalPath {
  readonly kind: "canonical";
  readonly path: string;
  readonly segments: readonly string[];
}

/** Why a path was refused; the server answers 400 without routing it. */
export type PathRejectionReason =
  | "not_absolute"
  | "invalid_character"
  | "control_character"
  | "backslash"
  | "invalid_percent_encoding"
  | "dot_segment"
  | "empty_segment";

/** A refused path: `reason` for counters and logs, `message` safe to show the client. */
export interface PathRejection {
  readonly kind: "rejected";
  readonly reason: PathRejectionReason;
  readonly message: string;
}

/** Printable ASCII except the characters a raw path may never carry ("#", "?" were split off, space, quotes...). */
const RAW_ALLOWED = /^[A-Za-z0-9\-._~!$&'()*+,;=:@%/]$/;
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;
const BAD_ESCAPE = /%(?![0-9A-Fa-f]{2})/;
/** RFC 3986 pchar characters written as themselves in a canonical segment. */
const PCHAR = /[A-Za-z0-9\-._~!$&'()*+,;=:@]/;

/**
 * Canonicalizes the raw path of a request (the request-target without its
 * query). Rules, each a rejection when broken:
 * - it starts with "/"; raw characters are RFC 3986 pchars, "/" or "%";
 * - it is split on raw "/" first, then each segment is percent-decoded as
 *   UTF-8, so "%2F" never creates a boundary;
 * - no segment is empty, except that ONE trailing slash is dropped: "/a/"
 *   is the same path as "/a" (one resource, one cache key); "/" is the root;
 * - no segment is "." or "..", written raw or encoded ("%2e%2e"), nor holds
 *   one between encoded slashes ("x%2F..%2Fkeys"), so no upstream that
 *   re-splits a value can be walked to another resource;
 * - no backslash (raw or "%5C": some servers treat it as "/") and no
 *   control character (raw or encoded, NUL included).
 */
export function canonicalPath(raw: string): CanonicalPath | PathRejection {
  if (!raw.startsWith("/")) return reject("not_absolute", 'the path must start with "/"');
  for (const c of raw) {
    if (c === "\\") return reject("backslash", "the path must not contain a backslash");
    if (CONTROL.test(c)) return reject("control_character", "the path must not contain control characters");
    if (!RAW_ALLOWED.test(c)) return reject("invalid_character", `the path must not contain ${JSON.stringify(c)} unencoded`);
  }
  if (raw === "/") return { kind: "canonical", path: "/", segments: [] };
  const parts = raw.slice(1, raw.endsWith("/") ? -1 : undefined).split("/");
  const segments: string[] = [];
  for (const part of parts) {
    const decoded = decodeSegment(part);
    if (typeof decoded !== "string") return decoded;
    segments.push(decoded);
  }
  return { kind: "canonical", path: `/${segments.map(encodePathSegment).join("/")}`, segments };
}

function decodeSegment(part: string): string | PathRejection {
  if (part === "") return reject("empty_segment", "the path must not contain empty segments");
  if (BAD_ESCAPE.test(part)) return reject("invalid_percent_encoding", "the path has an invalid percent-encoding");
  let decoded: string;
  try {
    decoded = decodeURIComponent(part);
  } catch {
    return reject("invalid_percent_encoding", "the path has a percent-encoding that is not UTF-8");
  }
  if (decoded.includes("\\")) return reject("backslash", "the path must not contain a backslash");
  if (CONTROL.test(decoded)) return reject("control_character", "the path must not contain control characters");
  if (decoded.split("/").some((piece) => piece === "." || piece === "..")) {
    return reject("dot_segment", 'the path must not contain "." or ".." segments');
  }
  return decoded;
}

function reject(reason: PathRejectionReason, message: string): PathRejection {
  return { kind: "rejected", reason, message };
}

/** Writes a decoded segment with pchars as themselves and every other UTF-8 byte as upper-case "%XX". */
export function encodePathSegment(segment: string): string {
  let out = "";
  for (const c of segment) {
    // encodeURIComponent writes upper-case escapes and leaves only pchars unescaped.
    out += PCHAR.test(c) ? c : encodeURIComponent(c);
  }
  return out;
}

/**
 * Matches a template against a canonical path. lib/path-template matches
 * strings, so this passes the canonical text: its segments are exactly the
 * canonical ones, and the matcher's decoding of variables gives back the
 * decoded values (multi-segment variables keep "%2F", per http.proto). The
 * template must have been through canonicalTemplate.
 */
export function matchCanonical(t: PathTemplate, path: CanonicalPath): Record<string, string> | undefined {
  return matchPathTemplate(t, path.path);
}

/**
 * The template with its literals and verb in canonical encoding ("%7e" →
 * "~", "%2f" → "%2F"), so matchCanonical compares like with like.
 */
export function canonicalTemplate(t: PathTemplate): PathTemplate {
  const literal = (s: Segment): Segment =>
    s.kind === "literal" ? { kind: "literal", value: encodePathSegment(decodeURIComponent(s.value)) } : s;
  const segments = t.segments.map(literal);
  const verb = t.verb === undefined ? undefined : encodePathSegment(decodeURIComponent(t.verb));
  return verb === undefined ? { ...t, segments } : { ...t, segments, verb };
}
