import { durationMs } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createLocalJWKSet, errors, jwtVerify, type JSONWebKeySet, type JWTVerifyGetKey } from "jose";
import { AuthService } from "../../gen/mesh/auth/v1/auth_pb.js";
import { JwtAlgorithm } from "../../gen/mesh/gateway/v1/config_pb.js";
import { bearerToken, tokenError, type AccessTokenClaims } from "../../lib/access-token.js";
import type { Cluster } from "../clusters/cluster.js";
import type { FilterConfig } from "../config/resolved-config.js";

const ALGORITHMS: Readonly<Record<number, string>> = {
  [JwtAlgorithm.EDDSA]: "EdDSA", [JwtAlgorithm.ES256]: "ES256", [JwtAlgorithm.RS256]: "RS256", [JwtAlgorithm.PS256]: "PS256",
};

export interface Authenticator {
  /** The verified claims of the request's bearer token; undefined without one; UNAUTHENTICATED for a bad one. */
  authenticate(headers: Headers): Promise<AccessTokenClaims | undefined>;
}

/**
 * JWT authentication against the auth service's JWKS: fetched once, cached,
 * fetched again when a token names an unknown `kid` (at most once per
 * `jwksMinRefetchInterval`); algorithms pinned by config; `iss`, `aud`, `exp`
 * and `nbf` checked with `clockLeeway`. A verified token is remembered until
 * it expires in a bounded LRU, so a busy client pays the signature check once;
 * a token the auth service revoked (`revoked`) is refused, cached or not.
 */
export function createAuthenticator(cfg: FilterConfig<"authn">,
  deps: { jwks: () => Promise<JSONWebKeySet>; revoked?: { has(jti: string): boolean }; now?: () => number }): Authenticator {
  const now = deps.now ?? Date.now;
  const algorithms = cfg.allowedAlgorithms.map((a) => ALGORITHMS[a]).filter((a): a is string => a !== undefined);
  const leewaySec = Math.round(durationMs(cfg.clockLeeway) / 1000);
  const refetchMs = durationMs(cfg.jwksMinRefetchInterval);
  const maxCached = cfg.verifiedTokenCacheSize;
  const verified = new Map<string, AccessTokenClaims>();
  let keys: { set: JWTVerifyGetKey; at: number } | undefined;
  let fetching: Promise<JWTVerifyGetKey> | undefined;

  const fetchKeys = () => (fetching ??= deps.jwks().then((jwks) => {
    const set = createLocalJWKSet(jwks);
    keys = { set, at: now() };
    return set;
  }, (err: unknown) => {
    if (keys) keys = { set: keys.set, at: now() }; // a failed refetch, too, waits out the interval
    throw err;
  }).finally(() => { fetching = undefined; }));

  async function verify(token: string, refetched = false): Promise<AccessTokenClaims> {
    const set = keys?.set ?? await fetchKeys();
    try {
      const { payload } = await jwtVerify(token, set, {
        algorithms, issuer: cfg.issuer, audience: [...cfg.audiences], clockTolerance: leewaySec,
        requiredClaims: ["sub", "jti", "exp"], currentDate: new Date(now()),
      });
      const roles = Array.isArray(payload.roles) ? payload.roles.filter((r): r is string => typeof r === "string") : [];
      return { userId: payload.sub!, jti: payload.jti!, roles, expiresAt: new Date(payload.exp! * 1000) };
    } catch (err) {
      if (err instanceof errors.JWKSNoMatchingKey && !refetched && keys && now() - keys.at >= refetchMs) {
        await fetchKeys();
        return verify(token, true);
      }
      if (err instanceof errors.JWTExpired) throw tokenError("access token expired", "TOKEN_EXPIRED", err);
      throw tokenError("invalid access token", "INVALID_TOKEN", err);
    }
  }

  /** A revoked token (logged out, user deactivated) is refused even while its signature and expiry are fine. */
  const unrevoked = (claims: AccessTokenClaims) => {
    if (deps.revoked?.has(claims.jti)) throw tokenError("access token revoked", "TOKEN_REVOKED");
    return claims;
  };

  return {
    async authenticate(headers) {
      const token = bearerToken(headers);
      if (token === undefined) return undefined;
      const hit = verified.get(token);
      if (hit && hit.expiresAt.getTime() > now() - leewaySec * 1000) {
        verified.delete(token);
        verified.set(token, hit); // most recently used last
        return unrevoked(hit);
      }
      const claims = unrevoked(await verify(token));
      verified.set(token, claims);
      if (verified.size > maxCached) verified.delete(verified.keys().next().value!);
      return claims;
    },
  };
}

/** The JWKS of the auth service, asked over gRPC through its cluster. */
export function jwksFromCluster(cluster: Cluster): () => Promise<JSONWebKeySet> {
  const client = createClient(AuthService, cluster.transport);
  return async () => {
    try {
      const res = await client.getJwks({}, { timeoutMs: 5_000 });
      return { keys: res.keys.map((k) => Object.fromEntries(Object.entries({ kty: k.kty, kid: k.kid, alg: k.alg, use: k.use, crv: k.crv, x: k.x, y: k.y }).filter(([, v]) => v !== ""))) };
    } catch (err) {
      throw new ConnectError("the auth service's signing keys cannot be fetched", Code.Unavailable, undefined, undefined, err);
    }
  };
}
