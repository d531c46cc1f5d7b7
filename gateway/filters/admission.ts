import type { DescMethod } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { tokenError } from "../../lib/access-token.js";
import { IDENTITY_HEADERS } from "../../lib/identity.js";
import { Access, methodPolicy } from "../../lib/policy.js";
import { traced } from "../tracing.js";
import type { ApiKeyVerifier } from "./api-key.js";
import type { Authenticator } from "./authn.js";
import type { RateLimiter, RateSubject } from "./rate-limit.js";
import type { RouteConfigs, RouteOverrides } from "./route-configs.js";

/** One call to admit, from REST or a native protocol: the target method and the client's headers. */
export interface AdmissionRequest {
  readonly method: DescMethod;
  /** The client's request headers (REST headers or gRPC metadata). */
  readonly headers: Headers;
  readonly remoteAddress: string;
  /** Filled with what goes upstream: identity metadata and the token. */
  readonly upstreamHeaders: Headers;
  /** Filled with reply headers (X-RateLimit-*, Retry-After). */
  readonly responseHeaders: Headers;
  /** The REST route (verb and template) for route-config lookups; absent for native calls. */
  readonly route?: { readonly verb: string; readonly template: string };
}

/** Who the gateway established the caller to be. */
export interface Admitted {
  readonly userId?: string;
  readonly projectId?: string;
  readonly apiKeyId?: string;
  readonly subject: RateSubject;
  /** The caller's project's route config for this route (API-key callers only). */
  readonly overrides?: RouteOverrides | undefined;
}

export interface AdmissionDeps {
  readonly authenticator?: Authenticator;
  readonly apiKeys?: ApiKeyVerifier;
  /** Header carrying API keys (lower case). */
  readonly apiKeyHeader: string;
  readonly rateLimiter?: RateLimiter;
  readonly routeConfigs?: RouteConfigs;
}

/**
 * The request-side filters every protocol shares, in order: authentication
 * (bearer JWT, API key), access by the method's policy, rate limit.
 * Identity reaches upstream only as the gateway establishes it
 * (`x-user-id`, `x-user-roles`, and for API keys `x-project-id`,
 * `x-api-key-id`); the same headers from clients are never forwarded.
 * Access: PUBLIC passes (credentials are used when valid, ignored when not);
 * USER needs a bearer token; API_KEY an API key; USER_OR_API_KEY either (the
 * key wins when both are sent); INTERNAL or no policy is refused — fail closed.
 * A route config of the API key's project (requests per minute, cache TTL)
 * applies to that key's requests only.
 */
export function createAdmission(deps: AdmissionDeps) {
  return async function admit(req: AdmissionRequest): Promise<Admitted> {
    try {
      return await admitOrThrow(req);
    } catch (err) {
      // Failed credentials spend the client IP's anonymous budget, so guessing tokens or keys is rate-limited too.
      if (deps.rateLimiter && ConnectError.from(err).code === Code.Unauthenticated) {
        await deps.rateLimiter.admit({ tier: "anonymous", id: req.remoteAddress }, 1, req.responseHeaders);
      }
      throw err;
    }
  };

  async function admitOrThrow(req: AdmissionRequest): Promise<Admitted> {
    const access = methodPolicy(req.method).access;
    if (access !== Access.PUBLIC && access !== Access.USER && access !== Access.API_KEY && access !== Access.USER_OR_API_KEY) {
      throw new ConnectError(`${req.method.parent.name}.${req.method.name} is not reachable from outside`, Code.PermissionDenied);
    }
    const lenient = access === Access.PUBLIC;
    const key = access === Access.USER ? undefined : req.headers.get(deps.apiKeyHeader) ?? undefined;
    let admitted: Admitted | undefined;
    if (key !== undefined && deps.apiKeys) {
      const apiKeys = deps.apiKeys;
      const id = await traced("api_key", () => (lenient ? apiKeys.verify(key).catch(() => undefined) : apiKeys.verify(key)));
      if (!id && !lenient) throw new ConnectError("invalid API key", Code.Unauthenticated);
      if (id) {
        req.upstreamHeaders.set(IDENTITY_HEADERS.userId, id.userId);
        req.upstreamHeaders.set(IDENTITY_HEADERS.roles, "user");
        req.upstreamHeaders.set(IDENTITY_HEADERS.projectId, id.projectId);
        req.upstreamHeaders.set(IDENTITY_HEADERS.apiKeyId, id.keyId);
        const overrides = req.route && deps.routeConfigs?.lookup(id.projectId, req.route.verb, req.route.template);
        admitted = { userId: id.userId, projectId: id.projectId, apiKeyId: id.keyId, subject: { tier: "api_key", id: id.keyId }, overrides };
      }
    }
    if (!admitted && access !== Access.API_KEY && deps.authenticator) {
      const auth = deps.authenticator;
      const claims = await traced("authn", () => (lenient ? auth.authenticate(req.headers).catch(() => undefined) : auth.authenticate(req.headers)));
      if (claims) {
        // The token travels on too: the auth service checks it again itself (logout revokes its jti).
        req.upstreamHeaders.set("authorization", req.headers.get("authorization")!);
        req.upstreamHeaders.set(IDENTITY_HEADERS.userId, claims.userId);
        req.upstreamHeaders.set(IDENTITY_HEADERS.roles, claims.roles.join(","));
        admitted = { userId: claims.userId, subject: { tier: "user", id: claims.userId } };
      }
    }
    if (!admitted) {
      if (access === Access.API_KEY) throw new ConnectError(`an API key is required (${deps.apiKeyHeader})`, Code.Unauthenticated);
      if (access !== Access.PUBLIC) throw tokenError("authentication required: send Authorization: Bearer <access token>", "MISSING_TOKEN");
      admitted = { subject: { tier: "anonymous", id: req.remoteAddress } };
    }
    const limit = admitted.overrides?.rateLimit;
    const limiter = deps.rateLimiter;
    if (limiter) {
      await traced("rate_limit", () => limiter.admit(admitted.subject, methodPolicy(req.method).rateLimitCost || 1, req.responseHeaders,
        limit ? { limit, periodMs: 60_000 } : undefined));
    }
    return admitted;
  }
}

export type Admission = ReturnType<typeof createAdmission>;
