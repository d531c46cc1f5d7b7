import { createContextKey, type HandlerContext, type Interceptor } from "@connectrpc/connect";
import { bearerToken, tokenError, type AccessTokenClaims } from "../../../lib/access-token.js";
import { Access, methodPolicy } from "../../../lib/policy.js";
import type { AuthDomain } from "../domain/auth-domain.js";

/** The verified caller of an ACCESS_USER method. */
export const kCaller = createContextKey<AccessTokenClaims | undefined>(undefined, { description: "verified caller" });

/**
 * Server interceptor: for methods whose policy is ACCESS_USER, requires
 * `authorization: Bearer <accessToken>`, verifies it (signature, issuer,
 * audience, expiry, revocation) and stores the claims under `kCaller`. The
 * auth service checks tokens itself, so it is safe to call directly as well
 * as through the gateway.
 */
export function createAuthenticateInterceptor(domain: Pick<AuthDomain, "authenticate">): Interceptor {
  return (next) => async (req) => {
    if (methodPolicy(req.method).access === Access.USER) {
      const token = bearerToken(req.header);
      if (!token) throw tokenError("missing bearer token", "MISSING_TOKEN");
      req.contextValues.set(kCaller, await domain.authenticate(token));
    }
    return next(req);
  };
}

/** The caller set by the interceptor; a method reaching this without one is a wiring bug. */
export function callerOf(ctx: HandlerContext): AccessTokenClaims {
  const caller = ctx.values.get(kCaller);
  if (!caller) throw tokenError("missing bearer token", "MISSING_TOKEN");
  return caller;
}
