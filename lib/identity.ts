import { Code, ConnectError } from "@connectrpc/connect";

/**
 * Metadata the gateway sets on every upstream call after authenticating the
 * client (and strips from what clients send): services trust these only
 * because network policy lets nothing but the gateway and peers reach them.
 */
export const IDENTITY_HEADERS = {
  userId: "x-user-id",
  roles: "x-user-roles",
  projectId: "x-project-id",
  apiKeyId: "x-api-key-id",
} as const;

/** Who is calling, as the gateway established it. */
export interface Caller {
  readonly userId: string;
  readonly roles: readonly string[];
  /** Set when the call was made with an API key: the key's project. */
  readonly projectId?: string;
  readonly apiKeyId?: string;
  readonly isAdmin: boolean;
}

/** The caller named by the identity metadata; UNAUTHENTICATED when there is none. */
export function callerFrom(headers: Headers): Caller {
  const userId = headers.get(IDENTITY_HEADERS.userId)?.trim();
  if (!userId) throw new ConnectError("caller identity missing", Code.Unauthenticated);
  const roles = (headers.get(IDENTITY_HEADERS.roles) ?? "").split(",").map((r) => r.trim()).filter(Boolean);
  const projectId = headers.get(IDENTITY_HEADERS.projectId)?.trim() || undefined;
  const apiKeyId = headers.get(IDENTITY_HEADERS.apiKeyId)?.trim() || undefined;
  return { userId, roles, isAdmin: roles.includes("admin"), ...(projectId ? { projectId } : {}), ...(apiKeyId ? { apiKeyId } : {}) };
}

/** Identity metadata for a caller, as the gateway (or a test client) sends it. */
export function identityHeaders(caller: { userId: string; roles?: readonly string[]; projectId?: string; apiKeyId?: string }): Record<string, string> {
  return {
    [IDENTITY_HEADERS.userId]: caller.userId,
    [IDENTITY_HEADERS.roles]: (caller.roles ?? ["user"]).join(","),
    ...(caller.projectId ? { [IDENTITY_HEADERS.projectId]: caller.projectId } : {}),
    ...(caller.apiKeyId ? { [IDENTITY_HEADERS.apiKeyId]: caller.apiKeyId } : {}),
  };
}
