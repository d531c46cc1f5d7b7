import { create } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { errors, jwtVerify, type JWTVerifyGetKey } from "jose";
import { ErrorInfoSchema } from "../gen/google/rpc/error_details_pb.js";

/** The one signature algorithm the mesh accepts; anything else (`none`, HS256…) is refused. */
export const ACCESS_TOKEN_ALG = "EdDSA";

/** `google.rpc.ErrorInfo` domain of token errors. */
export const AUTH_ERROR_DOMAIN = "auth.mesh";

/** Claims of a verified access token. */
export interface AccessTokenClaims {
  readonly userId: string;
  readonly jti: string;
  readonly roles: readonly string[];
  readonly expiresAt: Date;
}

export interface AccessTokenVerifierOptions {
  /** Resolves the verification key by `kid`: `createLocalJWKSet` or `createRemoteJWKSet` from jose. */
  readonly keys: JWTVerifyGetKey;
  readonly issuer: string;
  readonly audience: string;
  /** Current time; injectable for tests. */
  readonly now?: () => Date;
}

/**
 * Verifies access tokens: EdDSA only, known `kid`, exact `iss` and `aud`,
 * unexpired, with `sub` and `jti`. Failures are UNAUTHENTICATED with an
 * ErrorInfo reason: TOKEN_EXPIRED for an expired token, INVALID_TOKEN else.
 */
export function createAccessTokenVerifier(opts: AccessTokenVerifierOptions) {
  return async function verify(token: string): Promise<AccessTokenClaims> {
    try {
      const { payload } = await jwtVerify(token, opts.keys, {
        algorithms: [ACCESS_TOKEN_ALG],
        issuer: opts.issuer,
        audience: opts.audience,
        requiredClaims: ["sub", "jti", "exp"],
        ...(opts.now ? { currentDate: opts.now() } : {}),
      });
      const roles = Array.isArray(payload.roles) ? payload.roles.filter((r): r is string => typeof r === "string") : [];
      return { userId: payload.sub!, jti: payload.jti!, roles, expiresAt: new Date(payload.exp! * 1000) };
    } catch (err) {
      if (err instanceof errors.JWTExpired) throw tokenError("access token expired", "TOKEN_EXPIRED", err);
      throw tokenError("invalid access token", "INVALID_TOKEN", err);
    }
  };
}

/** UNAUTHENTICATED with a machine-readable reason (TOKEN_EXPIRED, INVALID_TOKEN, TOKEN_REVOKED, MISSING_TOKEN). */
export function tokenError(message: string, reason: string, cause?: unknown): ConnectError {
  return new ConnectError(message, Code.Unauthenticated, undefined,
    [{ desc: ErrorInfoSchema, value: create(ErrorInfoSchema, { reason, domain: AUTH_ERROR_DOMAIN }) }], cause);
}

/** The token of an `Authorization: Bearer …` header, or undefined. */
export function bearerToken(headers: Headers): string | undefined {
  const value = headers.get("authorization");
  const match = value ? /^Bearer\s+(\S+)\s*$/i.exec(value) : null;
  return match?.[1];
}
