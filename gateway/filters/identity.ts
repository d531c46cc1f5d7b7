import { Code, ConnectError } from "@connectrpc/connect";
import { tokenError } from "../../lib/access-token.js";
import { IDENTITY_HEADERS } from "../../lib/identity.js";
import { Access, methodPolicy } from "../../lib/policy.js";
import type { RestFilter } from "../rest/handler.js";
import type { Authenticator } from "./authn.js";

/**
 * Establishes who calls and whether they may: the bearer token is verified
 * (the identity then travels upstream as `x-user-id` / `x-user-roles`; the
 * same headers from clients are never forwarded, upstream headers start
 * empty), and the method's policy decides: PUBLIC passes, USER and
 * USER_OR_API_KEY need a verified user (API keys are not accepted yet, so
 * API_KEY-only methods answer UNAUTHENTICATED),
 * anything else (INTERNAL, or no policy) is refused — fail closed.
 */
export function identityFilter(auth: Authenticator): RestFilter {
  return async (req, ex) => {
    const headers = new Headers();
    if (typeof req.headers.authorization === "string") headers.set("authorization", req.headers.authorization);
    const access = methodPolicy(ex.match.binding.method).access;
    // A public method ignores a bad token rather than failing (login with a stale header must work).
    const claims = access === Access.PUBLIC ? await auth.authenticate(headers).catch(() => undefined) : await auth.authenticate(headers);
    if (claims) {
      // The token travels on too: the auth service checks it again itself (logout revokes its jti).
      ex.upstreamHeaders.set("authorization", headers.get("authorization")!);
      ex.upstreamHeaders.set(IDENTITY_HEADERS.userId, claims.userId);
      ex.upstreamHeaders.set(IDENTITY_HEADERS.roles, claims.roles.join(","));
    }
    switch (access) {
      case Access.PUBLIC:
        return;
      case Access.API_KEY:
        throw new ConnectError("an API key is required (x-api-key)", Code.Unauthenticated);
      case Access.USER:
      case Access.USER_OR_API_KEY:
        if (!claims) throw tokenError("authentication required: send Authorization: Bearer <access token>", "MISSING_TOKEN");
        return;
      default:
        throw new ConnectError(`${ex.match.binding.method.name} is not reachable from outside`, Code.PermissionDenied);
    }
  };
}
