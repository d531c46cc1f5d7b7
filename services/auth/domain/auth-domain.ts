import { Code, ConnectError } from "@connectrpc/connect";
import { createAccessTokenVerifier, tokenError, type AccessTokenClaims } from "../../../lib/access-token.js";
import { createViolations, invalidArgument } from "../../../lib/errors.js";
import type { AuthStore, RevokedAccessToken, UserRecord } from "../storage/port.js";
import type { Keyring } from "./keyring.js";
import { passwordProblem, type PasswordHasher } from "./passwords.js";
import { randomToken, sha256Hex } from "./secrets.js";
import { issueAccessToken } from "./tokens.js";

/** Settings of the auth domain; see services/auth/config.ts for their sources and defaults. */
export interface AuthSettings {
  readonly issuer: string;
  readonly audience: string;
  readonly accessTokenTtlSeconds: number;
  readonly refreshTokenTtlSeconds: number;
  readonly verificationTokenTtlSeconds: number;
  readonly resetTokenTtlSeconds: number;
  /** Normalized emails that get the `admin` role. */
  readonly adminEmails: ReadonlySet<string>;
  /** Base URL put in mailed links. */
  readonly publicUrl: string;
}

export interface AuthDomainDeps {
  readonly store: AuthStore;
  readonly hasher: PasswordHasher;
  readonly keyring: Keyring;
  readonly settings: AuthSettings;
  readonly now: () => Date;
  readonly newId: () => string;
}

/** A user with the roles in force now. */
export type User = UserRecord;

export interface Session {
  readonly user: User;
  readonly accessToken: string;
  readonly refreshToken: string;
  readonly expiresIn: number;
}

/** Normalized form of an email: trimmed and lower-cased. */
export function normalizeEmail(email: string): string {
  return email.trim().toLowerCase();
}

const emailPattern = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

/**
 * The auth service's rules: registration, sessions with rotating refresh
 * tokens, revocation, email verification and password reset. No I/O of its
 * own: storage, hashing, keys, time and ids are injected.
 */
export function createAuthDomain(deps: AuthDomainDeps) {
  const { store, hasher, settings, now } = deps;
  const verifyToken = createAccessTokenVerifier({
    keys: deps.keyring.verificationKeys, issuer: settings.issuer, audience: settings.audience, now,
  });
  // Verifying against this hash when the email is unknown makes both failure
  // paths cost one argon2 verification, so timing tells nothing.
  const dummyHash = hasher.hash(randomToken());

  const rolesOf = (u: UserRecord) => (settings.adminEmails.has(u.email) ? ["user", "admin"] : ["user"]);
  const withRoles = (u: UserRecord): User => ({ ...u, roles: rolesOf(u) });

  async function startSession(user: UserRecord, familyId: string, tx: AuthStore): Promise<Session> {
    const at = now();
    const refreshToken = randomToken();
    await tx.insertRefreshToken({
      tokenHash: sha256Hex(refreshToken), familyId, userId: user.id, createdAt: at,
      expiresAt: new Date(at.getTime() + settings.refreshTokenTtlSeconds * 1000),
    });
    const access = await issueAccessToken(deps.keyring, {
      issuer: settings.issuer, audience: settings.audience, ttlSeconds: settings.accessTokenTtlSeconds,
    }, { userId: user.id, roles: rolesOf(user) }, at);
    return { user: withRoles(user), accessToken: access.token, refreshToken, expiresIn: settings.accessTokenTtlSeconds };
  }

  async function mailToken(user: UserRecord, purpose: "verify_email" | "reset_password", tx: AuthStore) {
    const at = now();
    const token = randomToken();
    const ttl = purpose === "verify_email" ? settings.verificationTokenTtlSeconds : settings.resetTokenTtlSeconds;
    await tx.expireOneTimeTokens(user.id, purpose, at);
    await tx.insertOneTimeToken({ tokenHash: sha256Hex(token), purpose, userId: user.id, createdAt: at, expiresAt: new Date(at.getTime() + ttl * 1000) });
    const link = purpose === "verify_email"
      ? `${settings.publicUrl}/api/v1/auth/verify-email?token=${token}`
      : `${settings.publicUrl}/reset-password?token=${token}`;
    await tx.enqueueMail({ id: deps.newId(), recipient: user.email, template: purpose, payload: { name: user.name, link }, createdAt: at });
  }

  return {
    /** Creates a user and mails an email verification link. ALREADY_EXISTS for a taken email. */
    async register(input: { email: string; password: string; name: string }): Promise<User> {
      const email = normalizeEmail(input.email);
      const name = input.name.trim();
      const v = createViolations();
      if (!emailPattern.test(email) || email.length > 254) v.add("email", "must be a valid email address");
      const problem = passwordProblem(input.password, email);
      if (problem) v.add("password", problem);
      if (name.length < 1 || name.length > 100) v.add("name", "must be 1 to 100 characters");
      v.throwIfAny();
      const at = now();
      const user: UserRecord = {
        id: deps.newId(), email, name, passwordHash: await hasher.hash(input.password), roles: ["user"],
        emailVerified: false, active: true, createdAt: at, updatedAt: at,
      };
      await store.transaction(async (tx) => {
        await tx.insertUser(user).catch((err: unknown) => {
          throw ConnectError.from(err).code === Code.AlreadyExists ? new ConnectError("email is already registered", Code.AlreadyExists) : err;
        });
        await mailToken(user, "verify_email", tx);
      });
      return withRoles(user);
    },

    /** UNAUTHENTICATED alike for an unknown email or a wrong password; PERMISSION_DENIED for a deactivated account. */
    async login(input: { email: string; password: string }): Promise<Session> {
      const user = await store.getUserByEmail(normalizeEmail(input.email));
      const ok = await hasher.verify(user?.passwordHash ?? (await dummyHash), input.password);
      if (!user || !ok) throw new ConnectError("invalid email or password", Code.Unauthenticated);
      if (!user.active) throw new ConnectError("account is deactivated", Code.PermissionDenied);
      return store.transaction((tx) => startSession(user, deps.newId(), tx));
    },

    /** Rotates a refresh token; reuse of a rotated token revokes its family. */
    async refresh(refreshToken: string): Promise<Session> {
      if (!refreshToken) throw tokenError("refresh token is required", "MISSING_TOKEN");
      // The rotation commits before any error is raised, so a detected reuse
      // revokes the family even though the caller gets an error.
      const outcome = await store.transaction(async (tx) => {
        const r = await tx.rotateRefreshToken(sha256Hex(refreshToken), now());
        if (r.kind !== "rotated") return r;
        const user = await tx.getUserById(r.previous.userId);
        if (!user?.active) {
          await tx.revokeFamily(r.previous.familyId, now());
          return { kind: "inactive" as const };
        }
        return { kind: "session" as const, session: await startSession(user, r.previous.familyId, tx) };
      });
      if (outcome.kind === "session") return outcome.session;
      if (outcome.kind === "reused") throw tokenError("refresh token was already used; the session has been revoked", "TOKEN_REUSED");
      if (outcome.kind === "inactive") throw new ConnectError("account is deactivated", Code.PermissionDenied);
      throw tokenError("invalid or expired refresh token", "INVALID_TOKEN");
    },

    /** Verifies an access token and refuses revoked ones; answers its claims. */
    async authenticate(accessToken: string): Promise<AccessTokenClaims> {
      const claims = await verifyToken(accessToken);
      if (await store.isAccessTokenRevoked(claims.jti)) throw tokenError("access token has been revoked", "TOKEN_REVOKED");
      return claims;
    },

    /** Revokes the caller's access token and, when given and theirs, the refresh token's family. */
    async logout(caller: AccessTokenClaims, refreshToken: string): Promise<void> {
      await store.transaction(async (tx) => {
        if (refreshToken) {
          const token = await tx.getRefreshToken(sha256Hex(refreshToken));
          if (token && token.userId === caller.userId) await tx.revokeFamily(token.familyId, now());
        }
        await tx.revokeAccessToken(caller.jti, caller.expiresAt, now());
      });
    },

    /** The caller's user; NOT_FOUND if deleted, PERMISSION_DENIED if deactivated. */
    async profile(caller: AccessTokenClaims): Promise<User> {
      const user = await store.getUserById(caller.userId);
      if (!user) throw new ConnectError("user not found", Code.NotFound);
      if (!user.active) throw new ConnectError("account is deactivated", Code.PermissionDenied);
      return withRoles(user);
    },

    /** Mails a verification link if the email belongs to an unverified user; silent otherwise. */
    async sendVerificationEmail(email: string): Promise<void> {
      const user = await store.getUserByEmail(normalizeEmail(email));
      if (!user || user.emailVerified || !user.active) return;
      await store.transaction((tx) => mailToken(user, "verify_email", tx));
    },

    /** Consumes a verification token. INVALID_ARGUMENT when unknown, used or expired. */
    async verifyEmail(token: string): Promise<void> {
      await store.transaction(async (tx) => {
        const userId = token ? await tx.consumeOneTimeToken(sha256Hex(token), "verify_email", now()) : undefined;
        if (!userId) throw createInvalidToken();
        await tx.updateUser(userId, { emailVerified: true }, now());
      });
    },

    /** Mails a reset link if the email belongs to an active user; silent otherwise. */
    async forgotPassword(email: string): Promise<void> {
      const user = await store.getUserByEmail(normalizeEmail(email));
      if (!user || !user.active) return;
      await store.transaction((tx) => mailToken(user, "reset_password", tx));
    },

    /** Consumes a reset token, sets the password and revokes every session of the user. */
    async resetPassword(token: string, newPassword: string): Promise<void> {
      const problem = passwordProblem(newPassword, "");
      if (problem) throw invalidArgument([{ field: "new_password", description: problem }]);
      const passwordHash = await hasher.hash(newPassword);
      await store.transaction(async (tx) => {
        const userId = token ? await tx.consumeOneTimeToken(sha256Hex(token), "reset_password", now()) : undefined;
        if (!userId) throw createInvalidToken();
        const user = await tx.updateUser(userId, { passwordHash }, now());
        if (user && passwordProblem(newPassword, user.email)) throw invalidArgument([{ field: "new_password", description: "must not be the email address" }]);
        await tx.revokeAllRefreshTokens(userId, now());
      });
    },

    /** Admins only. Deactivation revokes every session of the user. */
    async setUserActive(caller: AccessTokenClaims, userId: string, active: boolean): Promise<User> {
      if (!caller.roles.includes("admin")) throw new ConnectError("admin role required", Code.PermissionDenied);
      const user = await store.transaction(async (tx) => {
        const u = await tx.updateUser(userId, { active }, now());
        if (u && !active) await tx.revokeAllRefreshTokens(userId, now());
        return u;
      });
      if (!user) throw new ConnectError("user not found", Code.NotFound);
      return withRoles(user);
    },

    /** Live revocations after `afterSequence`, at most `limit` (default 1000). */
    listRevokedTokens(afterSequence: bigint, limit: number): Promise<RevokedAccessToken[]> {
      return store.listRevokedAccessTokens(afterSequence, limit > 0 ? Math.min(limit, 1000) : 1000, now());
    },

    publicJwks: () => deps.keyring.publicJwks(),
  };
}

export type AuthDomain = ReturnType<typeof createAuthDomain>;

function createInvalidToken(): ConnectError {
  return invalidArgument([{ field: "token", description: "is invalid, already used or expired" }]);
}
