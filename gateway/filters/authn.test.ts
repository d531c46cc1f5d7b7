import { create } from "@bufbuild/protobuf";
import { durationFromMs } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import {
  base64url, exportJWK, exportSPKI, generateKeyPair, jwtVerify, SignJWT, UnsecuredJWT,
  type CryptoKey, type JSONWebKeySet, type JWK, type JWTPayload,
} from "jose";
import { beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import { ErrorInfoSchema } from "../../gen/google/rpc/error_details_pb.js";
import { AuthnFilterSchema, JwtAlgorithm } from "../../gen/mesh/gateway/v1/config_pb.js";
import { rejectionOf } from "../../test/support/rejection.js";
import type { FilterConfig } from "../config/resolved-config.js";
import { createAuthenticator } from "./authn.js";

// Counts signature verifications, so tests can tell a cache hit from a fresh check.
vi.mock("jose", async (importOriginal) => {
  const actual = await importOriginal<typeof import("jose")>();
  return { ...actual, jwtVerify: vi.fn(actual.jwtVerify) };
});
const verifications = () => vi.mocked(jwtVerify).mock.calls.length;

const T0 = Date.UTC(2030, 0, 1);
const sec = (ms: number) => Math.floor(ms / 1000);

type Init = Parameters<typeof create<typeof AuthnFilterSchema>>[1];
const config = (o: Init = {}) => create(AuthnFilterSchema, {
  jwksSource: { case: "jwksCluster", value: "auth" }, issuer: "mesh-auth", audiences: ["mesh"],
  clockLeeway: durationFromMs(30_000), allowedAlgorithms: [JwtAlgorithm.EDDSA],
  verifiedTokenCacheSize: 100, jwksMinRefetchInterval: durationFromMs(30_000), ...o,
}) as unknown as FilterConfig<"authn">;

interface Signer { readonly kid: string; readonly alg: string; readonly privateKey: CryptoKey; readonly jwk: JWK }
async function signer(kid: string, alg: "EdDSA" | "ES256" = "EdDSA"): Promise<Signer> {
  const { privateKey, publicKey } = await generateKeyPair(alg);
  return { kid, alg, privateKey, jwk: { ...(await exportJWK(publicKey)), kid, alg, use: "sig" } };
}

let jtiSeq = 0;
/** Claims of a good token at T0; `undefined` values are left out. */
const claims = (o: Record<string, unknown> = {}): JWTPayload => Object.fromEntries(Object.entries({
  iss: "mesh-auth", aud: "mesh", sub: "user-1", jti: `jti-${++jtiSeq}`, roles: ["user", 7, "admin"],
  iat: sec(T0), exp: sec(T0) + 900, ...o,
}).filter(([, v]) => v !== undefined)) as JWTPayload;

const sign = (s: Signer, payload: JWTPayload = claims(), header: Record<string, unknown> = {}) =>
  new SignJWT(payload).setProtectedHeader({ alg: s.alg, kid: s.kid, typ: "JWT", ...header }).sign(s.privateKey);

const bearer = (token: string) => new Headers({ authorization: `Bearer ${token}` });
const reasonOf = (err: ConnectError) => err.findDetails(ErrorInfoSchema)[0]?.reason;

let k1: Signer, k2: Signer, k3: Signer, ec: Signer;
beforeAll(async () => {
  [k1, k2, k3, ec] = await Promise.all([signer("k1"), signer("k2"), signer("k3"), signer("ec", "ES256")]);
});

/** An authenticator over a JWKS the test publishes, at a clock the test moves. */
function harness(cfg = config(), revoked = new Set<string>()) {
  const h = {
    t: T0,
    published: [k1.jwk, ec.jwk] as JWK[],
    fail: undefined as Error | undefined,
    jwks: vi.fn(async (): Promise<JSONWebKeySet> => {
      if (h.fail) throw h.fail;
      return { keys: [...h.published] };
    }),
    revoked,
  };
  const auth = createAuthenticator(cfg, { jwks: h.jwks, revoked, now: () => h.t });
  return { ...h, h, auth };
}

beforeEach(() => { vi.mocked(jwtVerify).mockClear(); });

describe("authenticator: token checks", () => {
  it("answers the claims of a valid token, keeping only string roles", async () => {
    const { auth } = harness();
    const token = await sign(k1, claims({ jti: "j-ok" }));
    expect(await auth.authenticate(bearer(token))).toEqual({
      userId: "user-1", jti: "j-ok", roles: ["user", "admin"], expiresAt: new Date((sec(T0) + 900) * 1000),
    });
  });

  const rejected: [string, () => Promise<string>, string][] = [
    ["alg none", async () => new UnsecuredJWT(claims()).encode(), "INVALID_TOKEN"],
    ["alg none with a known kid", async () => {
      const [h, p] = new UnsecuredJWT(claims()).encode().split(".");
      const header = base64url.encode(JSON.stringify({ ...JSON.parse(new TextDecoder().decode(base64url.decode(h!))), kid: "k1" }));
      return `${header}.${p}.`;
    }, "INVALID_TOKEN"],
    ["HS256 keyed with the public key's raw bytes", async () =>
      new SignJWT(claims()).setProtectedHeader({ alg: "HS256", kid: "k1" }).sign(base64url.decode(k1.jwk.x!)), "INVALID_TOKEN"],
    ["HS256 keyed with the public key's PEM", async () => {
      const { publicKey } = await generateKeyPair("EdDSA", { extractable: true });
      return new SignJWT(claims()).setProtectedHeader({ alg: "HS256", kid: "k1" }).sign(new TextEncoder().encode(await exportSPKI(publicKey)));
    }, "INVALID_TOKEN"],
    ["ES256 (a published key) when only EdDSA is allowed", () => sign(ec), "INVALID_TOKEN"],
    ["a wrong issuer", () => sign(k1, claims({ iss: "evil" })), "INVALID_TOKEN"],
    ["no issuer", () => sign(k1, claims({ iss: undefined })), "INVALID_TOKEN"],
    ["a wrong audience", () => sign(k1, claims({ aud: "other" })), "INVALID_TOKEN"],
    ["no audience", () => sign(k1, claims({ aud: undefined })), "INVALID_TOKEN"],
    ["exp past beyond the leeway", () => sign(k1, claims({ exp: sec(T0) - 31 })), "TOKEN_EXPIRED"],
    ["exp exactly at the leeway", () => sign(k1, claims({ exp: sec(T0) - 30 })), "TOKEN_EXPIRED"],
    ["nbf in the future beyond the leeway", () => sign(k1, claims({ nbf: sec(T0) + 31 })), "INVALID_TOKEN"],
    ["no sub", () => sign(k1, claims({ sub: undefined })), "INVALID_TOKEN"],
    ["no jti", () => sign(k1, claims({ jti: undefined })), "INVALID_TOKEN"],
    ["no exp", () => sign(k1, claims({ exp: undefined })), "INVALID_TOKEN"],
    ["a non-numeric exp", () => sign(k1, claims({ exp: "soon" })), "INVALID_TOKEN"],
    ["a signature by an unpublished key under a published kid", () => sign({ ...k2, kid: "k1" }), "INVALID_TOKEN"],
    ["a tampered payload", async () => {
      const [h, , s] = (await sign(k1)).split(".");
      return `${h}.${base64url.encode(JSON.stringify(claims({ sub: "admin" })))}.${s}`;
    }, "INVALID_TOKEN"],
    ["garbage", async () => "not-a-jwt", "INVALID_TOKEN"],
    ["three empty parts", async () => "..", "INVALID_TOKEN"],
    ["a payload that is not JSON", async () => {
      const [h, , s] = (await sign(k1)).split(".");
      return `${h}.${base64url.encode("{oops")}.${s}`;
    }, "INVALID_TOKEN"],
    ["a JWE-shaped token", async () => "a.b.c.d.e", "INVALID_TOKEN"],
  ];
  it.each(rejected.map(([name, token, reason]) => ({ name, token, reason })))("refuses $name with UNAUTHENTICATED $reason", async ({ token, reason }) => {
    const { auth } = harness();
    const err = await rejectionOf(auth.authenticate(bearer(await token())));
    expect([err.code, reasonOf(err)]).toEqual([Code.Unauthenticated, reason]);
  });

  const accepted: [string, () => Promise<string>, Init?][] = [
    ["exp past within the leeway", () => sign(k1, claims({ exp: sec(T0) - 29 }))],
    ["nbf in the future within the leeway", () => sign(k1, claims({ nbf: sec(T0) + 30 }))],
    ["nbf in the past", () => sign(k1, claims({ nbf: sec(T0) - 60 }))],
    ["one of several configured audiences", () => sign(k1, claims({ aud: "console" })), { audiences: ["mesh", "console"] }],
    ["an audience list naming a configured one", () => sign(k1, claims({ aud: ["other", "mesh"] }))],
    ["ES256 when ES256 is allowed", () => sign(ec), { allowedAlgorithms: [JwtAlgorithm.EDDSA, JwtAlgorithm.ES256] }],
  ];
  it.each(accepted.map(([name, token, o]) => ({ name, token, o })))("accepts $name", async ({ token, o }) => {
    const { auth } = harness(config(o));
    expect(await auth.authenticate(bearer(await token()))).toMatchObject({ userId: "user-1" });
  });

  it("refuses EdDSA when only ES256 is allowed (the config enum maps to jose's names)", async () => {
    const { auth } = harness(config({ allowedAlgorithms: [JwtAlgorithm.ES256] }));
    expect(await auth.authenticate(bearer(await sign(ec)))).toMatchObject({ userId: "user-1" });
    const err = await rejectionOf(auth.authenticate(bearer(await sign(k1))));
    expect([err.code, reasonOf(err)]).toEqual([Code.Unauthenticated, "INVALID_TOKEN"]);
  });
});

describe("authenticator: Authorization header", () => {
  it.each([
    ["no Authorization header", {}],
    ["a Basic credential", { authorization: "Basic dXNlcjpwYXNz" }],
    ["a bare Bearer", { authorization: "Bearer" }],
    ["Bearer with only spaces", { authorization: "Bearer   " }],
    ["two tokens", { authorization: "Bearer a b" }],
    ["a token without the scheme", { authorization: "eyJhbGciOi.x.y" }],
  ])("answers undefined for %s, fetching no keys", async (_, headers) => {
    const { auth, jwks } = harness();
    expect(await auth.authenticate(new Headers(headers))).toBeUndefined();
    expect(jwks).not.toHaveBeenCalled();
  });

  it("reads the scheme case-insensitively and tolerates extra spaces", async () => {
    const { auth } = harness();
    const token = await sign(k1);
    expect(await auth.authenticate(new Headers({ authorization: `bearer   ${token}  ` }))).toMatchObject({ userId: "user-1" });
  });
});

describe("authenticator: JWKS", () => {
  it("fetches the JWKS lazily, once, and reuses it", async () => {
    const { auth, jwks } = harness();
    expect(jwks).not.toHaveBeenCalled();
    await Promise.all([auth.authenticate(bearer(await sign(k1))), auth.authenticate(bearer(await sign(k1)))]);
    await auth.authenticate(bearer(await sign(k1)));
    expect(jwks).toHaveBeenCalledTimes(1);
  });

  it("retries a failed first fetch on the next request", async () => {
    const { h, auth, jwks } = harness();
    h.fail = new ConnectError("auth down", Code.Unavailable);
    expect((await rejectionOf(auth.authenticate(bearer(await sign(k1))))).code).toBe(Code.Unavailable);
    h.fail = undefined;
    expect(await auth.authenticate(bearer(await sign(k1)))).toMatchObject({ userId: "user-1" });
    expect(jwks).toHaveBeenCalledTimes(2);
  });

  it("refetches once for an unknown kid after the min interval, and then accepts the rotated-in key", async () => {
    const { h, auth, jwks } = harness();
    await auth.authenticate(bearer(await sign(k1)));
    h.published = [k1.jwk, k2.jwk]; // rotation
    // Within the min interval of the first fetch: no refetch, the new kid is unknown.
    expect(reasonOf(await rejectionOf(auth.authenticate(bearer(await sign(k2)))))).toBe("INVALID_TOKEN");
    expect(jwks).toHaveBeenCalledTimes(1);
    h.t += 30_000;
    const [a, b] = await Promise.all([auth.authenticate(bearer(await sign(k2))), auth.authenticate(bearer(await sign(k2)))]);
    expect([a?.userId, b?.userId]).toEqual(["user-1", "user-1"]);
    expect(jwks).toHaveBeenCalledTimes(2); // concurrent unknown kids share one refetch
    expect(await auth.authenticate(bearer(await sign(k1)))).toMatchObject({ userId: "user-1" });
    expect(jwks).toHaveBeenCalledTimes(2);
  });

  it("does not refetch for a second unknown kid within the min interval", async () => {
    const { h, auth, jwks } = harness();
    await auth.authenticate(bearer(await sign(k1)));
    h.t += 30_000;
    expect(reasonOf(await rejectionOf(auth.authenticate(bearer(await sign(k3)))))).toBe("INVALID_TOKEN");
    expect(jwks).toHaveBeenCalledTimes(2);
    h.t += 29_999;
    expect(reasonOf(await rejectionOf(auth.authenticate(bearer(await sign(k3)))))).toBe("INVALID_TOKEN");
    expect(reasonOf(await rejectionOf(auth.authenticate(bearer(await sign(k2)))))).toBe("INVALID_TOKEN");
    expect(jwks).toHaveBeenCalledTimes(2);
    h.t += 1;
    await rejectionOf(auth.authenticate(bearer(await sign(k3))));
    expect(jwks).toHaveBeenCalledTimes(3);
  });

  it("does not refetch for unknown kids within the min interval after a failed refetch", async () => {
    const { h, auth, jwks } = harness();
    await auth.authenticate(bearer(await sign(k1)));
    h.t += 30_000;
    h.fail = new ConnectError("auth down", Code.Unavailable);
    await rejectionOf(auth.authenticate(bearer(await sign(k3))));
    expect(jwks).toHaveBeenCalledTimes(2);
    for (let i = 0; i < 3; i++) await rejectionOf(auth.authenticate(bearer(await sign(k3))));
    expect(jwks).toHaveBeenCalledTimes(2);
    // The keys it had keep working meanwhile.
    expect(await auth.authenticate(bearer(await sign(k1)))).toMatchObject({ userId: "user-1" });
  });
});

describe("authenticator: verified-token cache", () => {
  it("verifies a token once and answers repeats from the cache", async () => {
    const { auth } = harness();
    const token = await sign(k1);
    const first = await auth.authenticate(bearer(token));
    expect(await auth.authenticate(bearer(token))).toEqual(first);
    expect(await auth.authenticate(bearer(token))).toEqual(first);
    expect(verifications()).toBe(1);
  });

  it("does not serve a cached token past its expiry and leeway", async () => {
    const { h, auth } = harness();
    const token = await sign(k1, claims({ exp: sec(T0) + 60 }));
    await auth.authenticate(bearer(token));
    h.t = T0 + 89_999; // exp + leeway not yet reached: still a hit
    await auth.authenticate(bearer(token));
    expect(verifications()).toBe(1);
    h.t = T0 + 90_000;
    const err = await rejectionOf(auth.authenticate(bearer(token)));
    expect([err.code, reasonOf(err)]).toEqual([Code.Unauthenticated, "TOKEN_EXPIRED"]);
    expect(verifications()).toBe(2);
  });

  it("evicts the least recently used token past the cap", async () => {
    const { auth } = harness(config({ verifiedTokenCacheSize: 2 }));
    const [a, b, c] = await Promise.all([sign(k1), sign(k1), sign(k1)]);
    await auth.authenticate(bearer(a!));
    await auth.authenticate(bearer(b!));
    await auth.authenticate(bearer(a!)); // a is now the most recently used
    expect(verifications()).toBe(2);
    await auth.authenticate(bearer(c!)); // evicts b
    expect(verifications()).toBe(3);
    await auth.authenticate(bearer(a!));
    await auth.authenticate(bearer(c!));
    expect(verifications()).toBe(3);
    await auth.authenticate(bearer(b!));
    expect(verifications()).toBe(4);
  });

  it("refuses a revoked jti with TOKEN_REVOKED, cached or not", async () => {
    const revoked = new Set<string>(["j-dead"]);
    const { auth } = harness(config(), revoked);
    const err = await rejectionOf(auth.authenticate(bearer(await sign(k1, claims({ jti: "j-dead" })))));
    expect([err.code, reasonOf(err)]).toEqual([Code.Unauthenticated, "TOKEN_REVOKED"]);

    const token = await sign(k1, claims({ jti: "j-live" }));
    await auth.authenticate(bearer(token));
    revoked.add("j-live");
    const cached = await rejectionOf(auth.authenticate(bearer(token)));
    expect([cached.code, reasonOf(cached)]).toEqual([Code.Unauthenticated, "TOKEN_REVOKED"]);
    expect(verifications()).toBe(2); // the second refusal came from the cache path
  });
});
