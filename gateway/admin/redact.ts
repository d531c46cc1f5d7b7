import type { JsonValue } from "@bufbuild/protobuf";

/** What replaces a secret. */
export const REDACTED = "***";

/** Keys whose string values are secrets (none in config.proto today; a guard for tomorrow's). Objects such as the `apiKey` filter are walked, not hidden. */
const SECRET_KEY = /password|secret|token|credential|private_?key|api_?key$/i;

/** scheme://[userinfo@]host...[?query][#fragment]; userinfo ends at the authority's last "@". */
const URL_PARTS = /^([a-z][a-z0-9+.-]*:\/\/)(?:([^/?#]*)@)?([^?#]*)(\?[^#]*)?(#.*)?$/i;

/**
 * A copy of a JSON config with its secrets replaced by `***`: every URL's
 * credentials (`redis://user:pw@host` → `redis://***@host`), every query
 * parameter's value (`https://h/jwks?token=x` → `?token=***`; a bare
 * parameter is hidden whole), the fragment,
 * and the value of any key named like a secret. URL-shaped strings are
 * found anywhere in the tree, so a secret-bearing URL added to the config
 * later is covered without a list to keep up to date.
 */
export function redactSecrets(value: JsonValue): JsonValue {
  if (typeof value === "string") return redactUrl(value);
  if (Array.isArray(value)) return value.map(redactSecrets);
  if (value === null || typeof value !== "object") return value;
  const out: Record<string, JsonValue> = {};
  for (const [k, v] of Object.entries(value)) out[k] = typeof v === "string" && v !== "" && SECRET_KEY.test(k) ? REDACTED : redactSecrets(v);
  return out;
}

/** `s` with a URL's credentials, query values and fragment redacted; other strings unchanged. */
export function redactUrl(s: string): string {
  const m = URL_PARTS.exec(s);
  if (!m) return s;
  const [, scheme, userinfo, rest, query, fragment] = m;
  const q = query === undefined ? "" : `?${query.slice(1).split("&").map(redactParam).join("&")}`;
  return `${scheme}${userinfo === undefined ? "" : `${REDACTED}@`}${rest}${q}${fragment === undefined ? "" : `#${REDACTED}`}`;
}

/** `name=value` → `name=***`; a bare `value` (it could be a credential, or the tail of a mistyped password) → `***`. */
function redactParam(p: string): string {
  const eq = p.indexOf("=");
  return eq < 0 ? (p === "" ? p : REDACTED) : `${p.slice(0, eq)}=${REDACTED}`;
}
