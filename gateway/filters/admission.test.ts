import { clone, create, setExtension, type DescMethod } from "@bufbuild/protobuf";
import { MethodOptionsSchema } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import { describe, expect, it, vi } from "vitest";
import { ErrorInfoSchema } from "../../gen/google/rpc/error_details_pb.js";
import { AuthService } from "../../gen/mesh/auth/v1/auth_pb.js";
import { Access, MethodPolicySchema, policy } from "../../gen/mesh/gateway/v1/policy_pb.js";
import { LoggingService } from "../../gen/mesh/logging/v1/logging_pb.js";
import { ProjectService } from "../../gen/mesh/project/v1/project_pb.js";
import { bearerToken, tokenError, type AccessTokenClaims } from "../../lib/access-token.js";
import { methodPolicy } from "../../lib/policy.js";
import { rejectionOf } from "../../test/support/rejection.js";
import { createAdmission, type AdmissionDeps, type AdmissionRequest } from "./admission.js";
import type { ApiKeyIdentity, ApiKeyVerifier } from "./api-key.js";
import type { Authenticator } from "./authn.js";
import type { RateLimiter } from "./rate-limit.js";
import type { RouteConfigs, RouteOverrides } from "./route-configs.js";

const PUBLIC = AuthService.method.login;
const USER = AuthService.method.getProfile;
const INTERNAL = ProjectService.method.verifyApiKey;
const EITHER = LoggingService.method.queryLogs;
const COSTLY = AuthService.method.forgotPassword;

/** A copy of `base` whose (mesh.gateway.v1.policy) is `access` (no real method is API_KEY-only). */
function withAccess(base: DescMethod, access: Access | undefined): DescMethod {
  const options = base.proto.options ? clone(MethodOptionsSchema, base.proto.options) : create(MethodOptionsSchema);
  options.$unknown = undefined; // drops the real policy
  if (access !== undefined) setExtension(options, policy, create(MethodPolicySchema, { access, rateLimitCost: 3 }));
  return { ...base, proto: { ...base.proto, options } } as DescMethod;
}
const API_KEY_ONLY = withAccess(EITHER, Access.API_KEY);
const NO_POLICY = withAccess(EITHER, undefined);

const alice: AccessTokenClaims = { userId: "alice", jti: "j1", roles: ["user", "admin"], expiresAt: new Date(8e12) };
const aliceKey: ApiKeyIdentity = { keyId: "key-1", projectId: "proj-1", userId: "owner-1" };

function fakes(o: { overrides?: RouteOverrides } = {}) {
  const authenticator = {
    authenticate: vi.fn<Authenticator["authenticate"]>(async (headers) => {
      const token = bearerToken(headers);
      if (token === undefined) return undefined;
      if (token === "good") return alice;
      if (token === "down") throw new ConnectError("keys unavailable", Code.Unavailable);
      throw tokenError("invalid access token", "INVALID_TOKEN");
    }),
  };
  const apiKeys = {
    verify: vi.fn<ApiKeyVerifier["verify"]>(async (key) => {
      if (key === "down") throw new ConnectError("API keys cannot be verified right now", Code.Unavailable);
      return key === "gw_good" ? aliceKey : undefined;
    }),
    watch: vi.fn(),
    close: vi.fn(),
  };
  const rateLimiter = { admit: vi.fn<RateLimiter["admit"]>(async () => undefined) };
  const routeConfigs = { lookup: vi.fn<RouteConfigs["lookup"]>(() => o.overrides), close: vi.fn() };
  const deps: AdmissionDeps = { authenticator, apiKeys, apiKeyHeader: "x-api-key", rateLimiter, routeConfigs };
  return { authenticator, apiKeys, rateLimiter, routeConfigs, deps, admit: createAdmission(deps) };
}

function request(method: DescMethod, headers: Record<string, string> = {}, route?: AdmissionRequest["route"]): AdmissionRequest {
  return {
    method, headers: new Headers(headers), remoteAddress: "203.0.113.9",
    upstreamHeaders: new Headers(), responseHeaders: new Headers(), ...(route ? { route } : {}),
  };
}
const reasonOf = (err: ConnectError) => err.findDetails(ErrorInfoSchema)[0]?.reason;
const upstream = (req: AdmissionRequest) => Object.fromEntries(req.upstreamHeaders);

describe("admission: access policy", () => {
  it("reads the policies of the methods these tests rely on", () => {
    expect([PUBLIC, USER, INTERNAL, EITHER, API_KEY_ONLY, NO_POLICY].map((m) => methodPolicy(m).access))
      .toEqual([Access.PUBLIC, Access.USER, Access.INTERNAL, Access.USER_OR_API_KEY, Access.API_KEY, Access.UNSPECIFIED]);
    expect([methodPolicy(COSTLY).rateLimitCost, methodPolicy(PUBLIC).rateLimitCost]).toEqual([10, 0]);
  });

  it.each([["INTERNAL", INTERNAL], ["no policy", NO_POLICY]])("refuses a method with %s as PERMISSION_DENIED, whatever the credentials", async (_, method) => {
    const f = fakes();
    const err = await rejectionOf(f.admit(request(method, { authorization: "Bearer good", "x-api-key": "gw_good" })));
    expect(err.code).toBe(Code.PermissionDenied);
    expect([f.authenticator.authenticate.mock.calls.length, f.apiKeys.verify.mock.calls.length, f.rateLimiter.admit.mock.calls.length]).toEqual([0, 0, 0]);
  });

  it("admits a USER method with a valid bearer token and forwards the token and the verified identity", async () => {
    const f = fakes();
    const req = request(USER, { authorization: "Bearer good", "x-user-id": "mallory", "x-user-roles": "admin", "x-project-id": "p-evil" });
    expect(await f.admit(req)).toEqual({ userId: "alice", subject: { tier: "user", id: "alice" } });
    expect(upstream(req)).toEqual({ authorization: "Bearer good", "x-user-id": "alice", "x-user-roles": "user,admin" });
  });

  it("refuses a USER method without a token as UNAUTHENTICATED MISSING_TOKEN, spending one request of the IP's anonymous budget", async () => {
    const f = fakes();
    const err = await rejectionOf(f.admit(request(USER)));
    expect([err.code, reasonOf(err)]).toEqual([Code.Unauthenticated, "MISSING_TOKEN"]);
    expect(f.rateLimiter.admit).toHaveBeenCalledTimes(1);
    expect(vi.mocked(f.rateLimiter.admit).mock.calls[0]!.slice(0, 2)).toEqual([{ tier: "anonymous", id: "203.0.113.9" }, 1]);
  });

  it("passes on the authenticator's refusal of a bad token on a USER method, after charging the IP", async () => {
    const f = fakes();
    const err = await rejectionOf(f.admit(request(USER, { authorization: "Bearer forged" })));
    expect([err.code, reasonOf(err)]).toEqual([Code.Unauthenticated, "INVALID_TOKEN"]);
    expect(vi.mocked(f.rateLimiter.admit).mock.calls.map((c) => c[0].tier)).toEqual(["anonymous"]);
  });

  it("answers 429 instead once failed credentials exhaust the IP's anonymous budget", async () => {
    const f = fakes();
    vi.mocked(f.rateLimiter.admit).mockRejectedValueOnce(new ConnectError("rate limit exceeded", Code.ResourceExhausted));
    expect((await rejectionOf(f.admit(request(USER, { authorization: "Bearer forged" })))).code).toBe(Code.ResourceExhausted);
  });

  it("ignores an API key on a USER method", async () => {
    const f = fakes();
    const err = await rejectionOf(f.admit(request(USER, { "x-api-key": "gw_good" })));
    expect(reasonOf(err)).toBe("MISSING_TOKEN");
    expect(f.apiKeys.verify).not.toHaveBeenCalled();
  });

  it("admits an API-key caller on a USER_OR_API_KEY method as the key's project and owner", async () => {
    const f = fakes();
    const req = request(EITHER, { "x-api-key": "gw_good", "x-user-id": "mallory" });
    expect(await f.admit(req)).toEqual({
      userId: "owner-1", projectId: "proj-1", apiKeyId: "key-1", subject: { tier: "api_key", id: "key-1" }, overrides: undefined,
    });
    expect(f.apiKeys.verify).toHaveBeenCalledWith("gw_good");
    expect(upstream(req)).toEqual({ "x-user-id": "owner-1", "x-user-roles": "user", "x-project-id": "proj-1", "x-api-key-id": "key-1" });
  });

  it("lets the API key win over a bearer token when both are sent", async () => {
    const f = fakes();
    const req = request(EITHER, { "x-api-key": "gw_good", authorization: "Bearer good" });
    expect((await f.admit(req)).subject).toEqual({ tier: "api_key", id: "key-1" });
    expect(f.authenticator.authenticate).not.toHaveBeenCalled();
    expect(req.upstreamHeaders.has("authorization")).toBe(false);
  });

  it("refuses an invalid API key on a USER_OR_API_KEY method even with a valid bearer token", async () => {
    const err = await rejectionOf(fakes().admit(request(EITHER, { "x-api-key": "gw_bad", authorization: "Bearer good" })));
    expect(err.code).toBe(Code.Unauthenticated);
  });

  it("admits a bearer caller on a USER_OR_API_KEY method", async () => {
    expect((await fakes().admit(request(EITHER, { authorization: "Bearer good" }))).subject).toEqual({ tier: "user", id: "alice" });
  });

  it("refuses a USER_OR_API_KEY method without credentials as MISSING_TOKEN", async () => {
    expect(reasonOf(await rejectionOf(fakes().admit(request(EITHER))))).toBe("MISSING_TOKEN");
  });

  it("passes on UNAVAILABLE when a key cannot be verified on a method that needs it", async () => {
    expect((await rejectionOf(fakes().admit(request(EITHER, { "x-api-key": "down" })))).code).toBe(Code.Unavailable);
  });

  it("admits an API_KEY method with a key only, never consulting the authenticator", async () => {
    const f = fakes();
    expect((await f.admit(request(API_KEY_ONLY, { "x-api-key": "gw_good" }))).apiKeyId).toBe("key-1");
    const err = await rejectionOf(f.admit(request(API_KEY_ONLY, { authorization: "Bearer good" })));
    expect([err.code, err.rawMessage]).toEqual([Code.Unauthenticated, "an API key is required (x-api-key)"]);
    expect(f.authenticator.authenticate).not.toHaveBeenCalled();
  });

  it("reads the key from the configured header", async () => {
    const f = fakes();
    const admit = createAdmission({ ...f.deps, apiKeyHeader: "x-custom-key" });
    expect((await admit(request(EITHER, { "x-custom-key": "gw_good" }))).apiKeyId).toBe("key-1");
    expect(reasonOf(await rejectionOf(admit(request(EITHER, { "x-api-key": "gw_good" }))))).toBe("MISSING_TOKEN");
  });
});

describe("admission: public methods are lenient", () => {
  it("admits an anonymous caller by its address, forwarding no identity", async () => {
    const f = fakes();
    const req = request(PUBLIC, { "x-user-id": "mallory", "x-api-key-id": "k-evil" });
    expect(await f.admit(req)).toEqual({ subject: { tier: "anonymous", id: "203.0.113.9" } });
    expect(upstream(req)).toEqual({});
  });

  it("uses valid credentials", async () => {
    const f = fakes();
    expect((await f.admit(request(PUBLIC, { authorization: "Bearer good" }))).subject).toEqual({ tier: "user", id: "alice" });
    expect((await f.admit(request(PUBLIC, { "x-api-key": "gw_good" }))).subject).toEqual({ tier: "api_key", id: "key-1" });
  });

  it.each([
    ["an invalid bearer token", { authorization: "Bearer forged" }],
    ["a bearer token that cannot be checked", { authorization: "Bearer down" }],
    ["an invalid API key", { "x-api-key": "gw_bad" }],
    ["an API key that cannot be checked", { "x-api-key": "down" }],
  ])("ignores %s", async (_, headers) => {
    const req = request(PUBLIC, headers);
    expect(await fakes().admit(req)).toEqual({ subject: { tier: "anonymous", id: "203.0.113.9" } });
    expect(upstream(req)).toEqual({});
  });

  it("falls back to a valid bearer token when the API key is invalid", async () => {
    expect((await fakes().admit(request(PUBLIC, { "x-api-key": "gw_bad", authorization: "Bearer good" }))).subject).toEqual({ tier: "user", id: "alice" });
  });
});

describe("admission: rate limiting", () => {
  it("spends the method's rate-limit cost (default 1) from the caller's tier", async () => {
    const f = fakes();
    const req = request(COSTLY);
    await f.admit(req);
    await f.admit(request(USER, { authorization: "Bearer good" }));
    await f.admit(request(EITHER, { "x-api-key": "gw_good" }));
    expect(f.rateLimiter.admit.mock.calls).toEqual([
      [{ tier: "anonymous", id: "203.0.113.9" }, 10, req.responseHeaders, undefined],
      [{ tier: "user", id: "alice" }, 1, expect.any(Headers), undefined],
      [{ tier: "api_key", id: "key-1" }, 1, expect.any(Headers), undefined],
    ]);
  });

  it("passes on the limiter's refusal", async () => {
    const f = fakes();
    f.rateLimiter.admit.mockRejectedValueOnce(new ConnectError("slow down", Code.ResourceExhausted));
    expect((await rejectionOf(f.admit(request(PUBLIC)))).code).toBe(Code.ResourceExhausted);
  });

  it("applies the key's project's route config to API-key callers", async () => {
    const f = fakes({ overrides: { rateLimit: 7, cacheTtlSeconds: 30 } });
    const admitted = await f.admit(request(EITHER, { "x-api-key": "gw_good" }, { verb: "GET", template: "/api/v1/logs" }));
    expect(f.routeConfigs.lookup).toHaveBeenCalledWith("proj-1", "GET", "/api/v1/logs");
    expect(admitted.overrides).toEqual({ rateLimit: 7, cacheTtlSeconds: 30 });
    expect(f.rateLimiter.admit).toHaveBeenCalledWith({ tier: "api_key", id: "key-1" }, 1, expect.any(Headers), { limit: 7, periodMs: 60_000 });
  });

  it("keeps the tier limit when the route config sets no rate limit", async () => {
    const f = fakes({ overrides: { cacheTtlSeconds: 30 } });
    await f.admit(request(EITHER, { "x-api-key": "gw_good" }, { verb: "GET", template: "/api/v1/logs" }));
    expect(f.rateLimiter.admit.mock.calls[0]?.[3]).toBeUndefined();
  });

  it("applies no route config to bearer callers, nor to calls without a REST route", async () => {
    const f = fakes({ overrides: { rateLimit: 7 } });
    const user = await f.admit(request(EITHER, { authorization: "Bearer good" }, { verb: "GET", template: "/api/v1/logs" }));
    const native = await f.admit(request(EITHER, { "x-api-key": "gw_good" }));
    expect([user.overrides, native.overrides]).toEqual([undefined, undefined]);
    expect(f.routeConfigs.lookup).not.toHaveBeenCalled();
    expect(f.rateLimiter.admit.mock.calls.map((c) => c[3])).toEqual([undefined, undefined]);
  });
});
