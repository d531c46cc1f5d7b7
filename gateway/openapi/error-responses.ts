import type { Header, JsonSchema, Ref, Response } from "./spec-types.js";

/** Component name of the one JSON error body (gateway/error-envelope.ts). */
export const ERROR_ENVELOPE = "ErrorEnvelope";

/** The error envelope, as `errorEnvelope` renders it (DESIGN.md "Errors"). */
export const errorEnvelopeSchema: JsonSchema = {
  type: "object",
  description: "The JSON body of every failed REST reply.",
  properties: {
    error: {
      type: "string",
      description: "Error name: VALIDATION_ERROR, UNAUTHORIZED, TOKEN_EXPIRED, FORBIDDEN, NOT_FOUND, METHOD_NOT_ALLOWED, "
        + "CONFLICT, PAYLOAD_TOO_LARGE, TOO_MANY_REQUESTS, INTERNAL, UNAVAILABLE, TIMEOUT, NOT_IMPLEMENTED, CANCELLED",
    },
    message: { type: "string", description: "A client-safe explanation." },
    statusCode: { type: "integer", description: "The HTTP status, repeated." },
    timestamp: { type: "string", format: "date-time" },
    requestId: { type: "string", description: "The x-request-id of the request, for support and tracing." },
    details: {
      type: "array",
      description: "Typed google.rpc details, e.g. google.rpc.BadRequest with its fieldViolations.",
      items: { type: "object", properties: { "@type": { type: "string" } }, required: ["@type"], additionalProperties: true },
    },
  },
  required: ["error", "message", "statusCode", "timestamp", "requestId", "details"],
  additionalProperties: false,
};

/** Response headers, by component name. */
export const responseHeaders: Readonly<Record<string, Header>> = {
  RequestId: { description: "The request's ID: the client's well-formed `x-request-id`, or one the gateway made.", schema: { type: "string" } },
  RateLimitLimit: { description: "Requests allowed per window (when rate limiting applies).", schema: { type: "integer" } },
  RateLimitRemaining: { description: "Requests left in the window.", schema: { type: "integer" } },
  RateLimitReset: { description: "Seconds until the window resets.", schema: { type: "integer" } },
  RetryAfter: { description: "Seconds to wait before retrying.", schema: { type: "integer" } },
  Allow: { description: "The methods the path allows.", schema: { type: "string" } },
  Cache: { description: "Whether the response cache answered (cacheable routes only).", schema: { type: "string", enum: ["HIT", "MISS", "BYPASS"] } },
};

const header = (name: string): Ref => ({ $ref: `#/components/headers/${name}` });

/** Headers every reply carries. */
export function commonHeaders(): Record<string, Ref> {
  return {
    "x-request-id": header("RequestId"),
    "X-RateLimit-Limit": header("RateLimitLimit"),
    "X-RateLimit-Remaining": header("RateLimitRemaining"),
    "X-RateLimit-Reset": header("RateLimitReset"),
  };
}

/** The cache header of a GET answer. */
export function cacheHeaders(): Record<string, Ref> {
  return { "X-Cache": header("Cache") };
}

/** Every error status the gateway answers REST requests with, the component named for it, and when. */
const ERRORS: readonly (readonly [status: number, name: string, when: string])[] = [
  [400, "BadRequest", "VALIDATION_ERROR: a malformed path, an unknown or invalid query parameter or body field (field violations in `details`), or a failed precondition."],
  [401, "Unauthorized", "UNAUTHORIZED (missing or invalid credentials) or TOKEN_EXPIRED."],
  [403, "Forbidden", "FORBIDDEN: the caller may not do this."],
  [404, "NotFound", "NOT_FOUND: no such route, or no such entity (also another user's)."],
  [405, "MethodNotAllowed", "METHOD_NOT_ALLOWED: the path exists for other methods, listed in `Allow`."],
  [409, "Conflict", "CONFLICT: the entity already exists, or a concurrent change won."],
  [413, "PayloadTooLarge", "PAYLOAD_TOO_LARGE: the request body exceeds the gateway's limit."],
  [429, "TooManyRequests", "TOO_MANY_REQUESTS: rate limit exceeded; retry after `Retry-After` seconds."],
  [500, "Internal", "INTERNAL: an unexpected failure."],
  [503, "Unavailable", "UNAVAILABLE: the service behind the route is down or overloaded."],
  [504, "Timeout", "TIMEOUT: the service did not answer in time."],
];

/** The statuses of `errorResponseRefs`, in order. */
export const ERROR_STATUSES: readonly number[] = ERRORS.map(([status]) => status);

/** The error responses as components, each the error envelope with its headers. */
export function errorResponseComponents(): Record<string, Response> {
  const out: Record<string, Response> = {};
  for (const [status, name, when] of ERRORS) {
    const extra: Record<string, Ref> = status === 429 ? { "Retry-After": header("RetryAfter") } : status === 405 ? { Allow: header("Allow") } : {};
    out[name] = {
      description: when,
      headers: { ...commonHeaders(), ...extra },
      content: { "application/json": { schema: { $ref: `#/components/schemas/${ERROR_ENVELOPE}` } } },
    };
  }
  return out;
}

/** An operation's error responses: status → `$ref` to the component. */
export function errorResponseRefs(): Record<string, Ref> {
  return Object.fromEntries(ERRORS.map(([status, name]) => [String(status), { $ref: `#/components/responses/${name}` }]));
}
