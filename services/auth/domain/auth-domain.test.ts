import { randomUUID } from "node:crypto";
import { join } from "node:path";
import { Code, ConnectError } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ErrorInfoSchema } from "../../../gen/google/rpc/error_details_pb.js";
import type { AccessTokenClaims } from "../../../lib/access-token.js";
import { fieldViolationsOf } from "../../../lib/errors.js";
import { loadMigrations, migrate } from "../../../lib/stores/migrate.js";
import { openRelationalStore, type RelationalStore } from "../../../lib/stores/postgres.js";
import type { AuthStore } from "../storage/port.js";
import { createPostgresAuthStore } from "../storage/postgres.js";
import { createAuthDomain, normalizeEmail, type AuthDomain, type AuthSettings } from "./auth-domain.js";
import { loadStoredKeyring, type Keyring, type StoredKeyringOptions } from "./keyring.js";
import { createArgon2Hasher, type PasswordHasher } from "./passwords.js";
import { sha256Hex } from "./secrets.js";
import { rejectionOf } from "../../../test/support/rejection.js";

// Fake clock: only the tests move it, and only forward.
let t = new Date("2026-01-01T00:00:00Z");
const now = () => t;
const advance = (seconds: number) => {
  t = new Date(t.getTime() + seconds * 1_000);
};

const ADMIN_EMAIL = "admin@example.test";
const PASSWORD = "correct-horse-42";
const settings: AuthSettings = {
  issuer: "mesh-auth", audience: "mesh", accessTokenTtlSeconds: 900, refreshTokenTtlSeconds: 7 * 86_400,
  verificationTokenTtlSeconds: 86_400, resetTokenTtlSeconds: 3_600, adminEmails: new Set([ADMIN_EMAIL]),
  publicUrl: "https://mesh.example.test",
};
const keyringOptions = (store: AuthStore): StoredKeyringOptions =>
  ({ store, now, rotateAfterMs: 365 * 86_400_000, accessTokenTtlMs: settings.accessTokenTtlSeconds * 1_000 });

/** A real (cheap) argon2id hasher that counts its calls. */
function countingHasher(inner: PasswordHasher) {
  const calls = { hash: 0, verify: 0 };
  const hasher: PasswordHasher = {
    hash: (password) => { calls.hash++; return inner.hash(password); },
    verify: (hash, password) => { calls.verify++; return inner.verify(hash, password); },
  };
  return { hasher, calls };
}

const newEmail = () => `user-${randomUUID()}@example.test`;


const reasonOf = (err: ConnectError) => err.findDetails(ErrorInfoSchema)[0]?.reason;
const fieldsOf = (err: ConnectError) => fieldViolationsOf(err).map((v) => v.field);

let db: RelationalStore;
let store: AuthStore;
let keyring: Keyring;
let domain: AuthDomain;
const { hasher, calls } = countingHasher(createArgon2Hasher({ memoryKib: 1024, passes: 1 }));
const makeDomain = (ring: Keyring) => createAuthDomain({ store, hasher, keyring: ring, settings, now, newId: randomUUID });

beforeAll(async () => {
  db = await openRelationalStore({});
  await migrate(db.pool, "auth", await loadMigrations(join(import.meta.dirname, "..", "storage", "migrations")));
  store = createPostgresAuthStore(db.pool);
  keyring = await loadStoredKeyring(keyringOptions(store));
  domain = makeDomain(keyring);
  await domain.register({ email: ADMIN_EMAIL, password: PASSWORD, name: "Admin" });
});
afterAll(async () => {
  await db?.close();
});

/** Registers a user with a unique email and answers it with its credentials. */
async function registered() {
  const email = newEmail();
  const user = await domain.register({ email, password: PASSWORD, name: "Ada" });
  return { email, user };
}

async function loggedIn() {
  const { email, user } = await registered();
  const session = await domain.login({ email, password: PASSWORD });
  return { email, user, session, claims: await domain.authenticate(session.accessToken) };
}

/** Mails to `recipient` of `template` in the outbox, oldest first. */
async function mailsTo(recipient: string, template: "verify_email" | "reset_password") {
  const due = await store.transaction((tx) => tx.claimDueMail(100_000, now()));
  return due.filter((m) => m.recipient === recipient && m.template === template);
}

/** The token carried by the newest mail of `template` to `recipient`. */
async function mailedToken(recipient: string, template: "verify_email" | "reset_password"): Promise<string> {
  const link = (await mailsTo(recipient, template)).at(-1)?.payload.link;
  const token = link ? new URL(link).searchParams.get("token") : null;
  if (!token) throw new Error(`no ${template} mail with a token to ${recipient}`);
  return token;
}

const adminClaims = async (): Promise<AccessTokenClaims> =>
  domain.authenticate((await domain.login({ email: ADMIN_EMAIL, password: PASSWORD })).accessToken);

describe("register", () => {
  it("stores the email trimmed and lower-cased", async () => {
    const email = newEmail();
    const user = await domain.register({ email: `  ${email.toUpperCase()} `, password: PASSWORD, name: "Ada" });
    expect(user.email).toBe(email);
    expect((await store.getUserByEmail(email))?.id).toBe(user.id);
  });

  it("mails a verification link carrying a token", async () => {
    const { email } = await registered();
    const [mail, ...others] = await mailsTo(email, "verify_email");
    expect(others).toEqual([]);
    expect(mail?.payload.link).toMatch(/^https:\/\/mesh\.example\.test\/api\/v1\/auth\/verify-email\?token=[\w-]{20,}$/);
  });

  // Factories, so each test registers its own fresh email.
  const invalid = [
    { field: "email", input: () => ({ email: `not-an-email-${randomUUID()}`, password: PASSWORD, name: "Ada" }) },
    { field: "password", input: () => ({ email: newEmail(), password: "short1", name: "Ada" }) },
    { field: "name", input: () => ({ email: newEmail(), password: PASSWORD, name: "   " }) },
  ];

  it.each(invalid)("rejects an invalid $field with InvalidArgument naming it", async ({ field, input }) => {
    const err = await rejectionOf(domain.register(input()));
    expect(err.code).toBe(Code.InvalidArgument);
    expect(fieldsOf(err)).toEqual([field]);
  });

  it.each(invalid)("writes nothing when the $field is invalid", async ({ input }) => {
    const attempt = input();
    await rejectionOf(domain.register(attempt));
    expect(await store.getUserByEmail(normalizeEmail(attempt.email))).toBeUndefined();
    expect(await mailsTo(normalizeEmail(attempt.email), "verify_email")).toEqual([]);
  });

  it("names every invalid field at once", async () => {
    const err = await rejectionOf(domain.register({ email: "nope", password: "x", name: "" }));
    expect(fieldsOf(err)).toEqual(["email", "password", "name"]);
  });

  it("rejects a taken email, whatever its case, with AlreadyExists", async () => {
    const { email } = await registered();
    const err = await rejectionOf(domain.register({ email: email.toUpperCase(), password: PASSWORD, name: "Eve" }));
    expect(err.code).toBe(Code.AlreadyExists);
    expect(err.rawMessage).toBe("email is already registered");
  });
});

describe("login", () => {
  it("answers a session whose access token authenticates the user", async () => {
    const { email, user } = await registered();
    const session = await domain.login({ email, password: PASSWORD });
    expect((await domain.authenticate(session.accessToken)).userId).toBe(user.id);
  });

  it("verifies exactly one password hash when the email is unknown", async () => {
    const before = calls.verify;
    await rejectionOf(domain.login({ email: newEmail(), password: PASSWORD }));
    expect(calls.verify - before).toBe(1);
  });

  it("answers an unknown email exactly as a wrong password", async () => {
    const { email } = await registered();
    const unknown = await rejectionOf(domain.login({ email: newEmail(), password: PASSWORD }));
    const wrong = await rejectionOf(domain.login({ email, password: "wrong-password-1" }));
    expect([unknown.code, unknown.rawMessage]).toEqual([Code.Unauthenticated, wrong.rawMessage]);
    expect(wrong.code).toBe(Code.Unauthenticated);
  });

  it("refuses a deactivated account with PermissionDenied given the right password", async () => {
    const { email, user } = await registered();
    await store.updateUser(user.id, { active: false }, now());
    expect((await rejectionOf(domain.login({ email, password: PASSWORD }))).code).toBe(Code.PermissionDenied);
  });

  it("answers Unauthenticated for a deactivated account given a wrong password", async () => {
    const { email, user } = await registered();
    await store.updateUser(user.id, { active: false }, now());
    expect((await rejectionOf(domain.login({ email, password: "wrong-password-1" }))).code).toBe(Code.Unauthenticated);
  });

  it("gives the admin role to an admin email", async () => {
    expect((await adminClaims()).roles).toEqual(["user", "admin"]);
  });
});

describe("refresh", () => {
  it("answers a new refresh token", async () => {
    const { session } = await loggedIn();
    const next = await domain.refresh(session.refreshToken);
    expect(next.refreshToken).not.toBe(session.refreshToken);
  });

  it("fails with TOKEN_REUSED when a rotated token is presented again", async () => {
    const { session } = await loggedIn();
    await domain.refresh(session.refreshToken);
    const err = await rejectionOf(domain.refresh(session.refreshToken));
    expect([err.code, reasonOf(err)]).toEqual([Code.Unauthenticated, "TOKEN_REUSED"]);
  });

  it("revokes the successor when a rotated token is reused", async () => {
    const { session } = await loggedIn();
    const next = await domain.refresh(session.refreshToken);
    await rejectionOf(domain.refresh(session.refreshToken));
    const err = await rejectionOf(domain.refresh(next.refreshToken));
    expect([err.code, reasonOf(err)]).toEqual([Code.Unauthenticated, "INVALID_TOKEN"]);
  });

  it("answers Unauthenticated INVALID_TOKEN for an unknown token", async () => {
    const err = await rejectionOf(domain.refresh("garbage"));
    expect([err.code, reasonOf(err)]).toEqual([Code.Unauthenticated, "INVALID_TOKEN"]);
  });

  it("answers Unauthenticated once the refresh-token lifetime has elapsed", async () => {
    const { session } = await loggedIn();
    advance(settings.refreshTokenTtlSeconds + 1);
    const err = await rejectionOf(domain.refresh(session.refreshToken));
    expect([err.code, reasonOf(err)]).toEqual([Code.Unauthenticated, "INVALID_TOKEN"]);
  });
});

describe("authenticate", () => {
  it("answers the claims of a valid token, roles included", async () => {
    const { user, session } = await loggedIn();
    const claims = await domain.authenticate(session.accessToken);
    expect(claims).toMatchObject({ userId: user.id, roles: ["user"], jti: expect.any(String) });
    expect(claims.expiresAt.getTime()).toBe(now().getTime() + settings.accessTokenTtlSeconds * 1_000);
  });

  it("fails with TOKEN_EXPIRED once the access-token lifetime has elapsed", async () => {
    const { session } = await loggedIn();
    advance(settings.accessTokenTtlSeconds + 1);
    const err = await rejectionOf(domain.authenticate(session.accessToken));
    expect([err.code, reasonOf(err)]).toEqual([Code.Unauthenticated, "TOKEN_EXPIRED"]);
  });
});

describe("logout", () => {
  it("revokes the access token", async () => {
    const { session, claims } = await loggedIn();
    await domain.logout(claims, session.refreshToken);
    const err = await rejectionOf(domain.authenticate(session.accessToken));
    expect([err.code, reasonOf(err)]).toEqual([Code.Unauthenticated, "TOKEN_REVOKED"]);
  });

  it("revokes the refresh-token family", async () => {
    const { session } = await loggedIn();
    const next = await domain.refresh(session.refreshToken);
    await domain.logout(await domain.authenticate(next.accessToken), next.refreshToken);
    const revoked = await Promise.all([session, next].map(async (s) => (await store.getRefreshToken(sha256Hex(s.refreshToken)))?.revoked));
    expect(revoked).toEqual([true, true]);
  });

  it("leaves someone else's refresh token alive", async () => {
    const caller = await loggedIn();
    const other = await loggedIn();
    await domain.logout(caller.claims, other.session.refreshToken);
    expect((await domain.refresh(other.session.refreshToken)).refreshToken).toEqual(expect.any(String));
  });
});

describe("verifyEmail", () => {
  it("marks the email verified", async () => {
    const { email, user } = await registered();
    await domain.verifyEmail(await mailedToken(email, "verify_email"));
    expect((await store.getUserById(user.id))?.emailVerified).toBe(true);
  });

  it("refuses a used token with InvalidArgument on field token", async () => {
    const { email } = await registered();
    const token = await mailedToken(email, "verify_email");
    await domain.verifyEmail(token);
    const err = await rejectionOf(domain.verifyEmail(token));
    expect([err.code, fieldsOf(err)]).toEqual([Code.InvalidArgument, ["token"]]);
  });

  it("refuses a token superseded by a newer verification mail", async () => {
    const { email } = await registered();
    const first = await mailedToken(email, "verify_email");
    advance(1);
    await domain.sendVerificationEmail(email);
    const err = await rejectionOf(domain.verifyEmail(first));
    expect([err.code, fieldsOf(err)]).toEqual([Code.InvalidArgument, ["token"]]);
  });
});

describe("forgotPassword", () => {
  it("answers quietly for an unknown email and mails nothing", async () => {
    const email = newEmail();
    await expect(domain.forgotPassword(email)).resolves.toBeUndefined();
    expect(await mailsTo(email, "reset_password")).toEqual([]);
  });

  it("mails a reset link to a known email", async () => {
    const { email } = await registered();
    await domain.forgotPassword(email);
    const [mail] = await mailsTo(email, "reset_password");
    expect(mail?.payload.link).toMatch(/^https:\/\/mesh\.example\.test\/reset-password\?token=[\w-]{20,}$/);
  });
});

describe("resetPassword", () => {
  const NEW_PASSWORD = "new-battery-staple-7";
  async function resetToken() {
    const r = await loggedIn();
    await domain.forgotPassword(r.email);
    return { ...r, token: await mailedToken(r.email, "reset_password") };
  }

  it("sets the new password", async () => {
    const { email, user, token } = await resetToken();
    await domain.resetPassword(token, NEW_PASSWORD);
    expect((await domain.login({ email, password: NEW_PASSWORD })).user.id).toBe(user.id);
  });

  it("makes the old password fail", async () => {
    const { email, token } = await resetToken();
    await domain.resetPassword(token, NEW_PASSWORD);
    expect((await rejectionOf(domain.login({ email, password: PASSWORD }))).code).toBe(Code.Unauthenticated);
  });

  it("revokes every refresh token of the user", async () => {
    const { email, session, token } = await resetToken();
    const second = await domain.login({ email, password: PASSWORD });
    await domain.resetPassword(token, NEW_PASSWORD);
    const revoked = await Promise.all([session, second].map(async (s) => (await store.getRefreshToken(sha256Hex(s.refreshToken)))?.revoked));
    expect(revoked).toEqual([true, true]);
  });

  it("refuses a used token with InvalidArgument on field token", async () => {
    const { token } = await resetToken();
    await domain.resetPassword(token, NEW_PASSWORD);
    const err = await rejectionOf(domain.resetPassword(token, "another-pass-8"));
    expect([err.code, fieldsOf(err)]).toEqual([Code.InvalidArgument, ["token"]]);
  });

  it("refuses an invalid new password with InvalidArgument on field new_password", async () => {
    const { token } = await resetToken();
    const err = await rejectionOf(domain.resetPassword(token, "weak"));
    expect([err.code, fieldsOf(err)]).toEqual([Code.InvalidArgument, ["new_password"]]);
  });

  it("keeps the token usable after an invalid new password", async () => {
    const { email, token } = await resetToken();
    await rejectionOf(domain.resetPassword(token, "weak"));
    await domain.resetPassword(token, NEW_PASSWORD);
    expect((await domain.login({ email, password: NEW_PASSWORD })).accessToken).toEqual(expect.any(String));
  });
});

describe("setUserActive", () => {
  it("refuses a non-admin caller with PermissionDenied", async () => {
    const caller = await loggedIn();
    const target = await registered();
    const err = await rejectionOf(domain.setUserActive(caller.claims, target.user.id, false));
    expect(err.code).toBe(Code.PermissionDenied);
    expect((await store.getUserById(target.user.id))?.active).toBe(true);
  });

  it("lets an admin deactivate a user", async () => {
    const target = await registered();
    expect((await domain.setUserActive(await adminClaims(), target.user.id, false)).active).toBe(false);
    expect((await rejectionOf(domain.login({ email: target.email, password: PASSWORD }))).code).toBe(Code.PermissionDenied);
  });

  it("revokes the sessions of a deactivated user", async () => {
    const target = await loggedIn();
    await domain.setUserActive(await adminClaims(), target.user.id, false);
    expect((await store.getRefreshToken(sha256Hex(target.session.refreshToken)))?.revoked).toBe(true);
  });
});

describe("listRevokedTokens", () => {
  it("pages revocations by sequence", async () => {
    const a = await loggedIn();
    const b = await loggedIn();
    await domain.logout(a.claims, "");
    await domain.logout(b.claims, "");
    const seqOfA = (await domain.listRevokedTokens(0n, 1_000)).find((r) => r.jti === a.claims.jti)?.sequence;
    expect(seqOfA).toEqual(expect.any(BigInt));
    expect((await domain.listRevokedTokens(seqOfA!, 1)).map((r) => r.jti)).toEqual([b.claims.jti]);
  });

  it("leaves out revocations of tokens that have expired", async () => {
    const a = await loggedIn();
    await domain.logout(a.claims, "");
    advance(settings.accessTokenTtlSeconds + 1);
    expect((await domain.listRevokedTokens(0n, 1_000)).map((r) => r.jti)).not.toContain(a.claims.jti);
  });
});

describe("signing-key rotation", () => {
  /** A session signed by a freshly loaded keyring, then a rotation a minute later. */
  async function rotateAfterLogin() {
    const before = await loadStoredKeyring(keyringOptions(store));
    const { email } = await registered();
    const session = await makeDomain(before).login({ email, password: PASSWORD });
    advance(60);
    const after = await before.rotate();
    return { before, after, session, rotatedAt: now() };
  }
  const kidsOf = (ring: Keyring) => ring.publicJwks().map((k) => k.kid);

  it("still authenticates a token signed before the rotation", async () => {
    const { after, session } = await rotateAfterLogin();
    await expect(makeDomain(after).authenticate(session.accessToken)).resolves.toMatchObject({ roles: ["user"] });
  });

  it("publishes the old and the new kid after a rotation", async () => {
    const { before, after } = await rotateAfterLogin();
    expect(after.signer().kid).not.toBe(before.signer().kid);
    expect(kidsOf(after)).toEqual(expect.arrayContaining([before.signer().kid, after.signer().kid]));
  });

  it("stops publishing the old kid once the access-token lifetime has passed after the rotation", async () => {
    const { before, after } = await rotateAfterLogin();
    advance(settings.accessTokenTtlSeconds + 1);
    const reloaded = await loadStoredKeyring(keyringOptions(store));
    expect(kidsOf(reloaded)).toEqual([after.signer().kid]);
    expect(kidsOf(reloaded)).not.toContain(before.signer().kid);
  });
});
