import { randomUUID } from "node:crypto";
import { Code, ConnectError } from "@connectrpc/connect";
import { SignJWT, UnsecuredJWT, base64url, generateKeyPair } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ErrorInfoSchema } from "../../gen/google/rpc/error_details_pb.js";
import { fieldViolationsOf } from "../../lib/errors.js";
import { startAuthHarness, type AuthHarness } from "../support/auth-harness.js";
import { callWithProto, healthCheck, reflectFiles, reflectServices } from "../support/grpc-generic.js";
import { describeWithServer } from "../support/integration.js";
import { rejectionOf } from "../support/rejection.js";

const password = "correct horse 1";

/** Code and ErrorInfo reason of a failed call. */
async function failure(call: Promise<unknown>): Promise<{ code: Code; reason: string; message: string; err: ConnectError }> {
  const err = await rejectionOf(call);
  return { code: err.code, reason: err.findDetails(ErrorInfoSchema)[0]?.reason ?? "", message: err.rawMessage, err };
}

const bearer = (token: string) => ({ headers: { authorization: `Bearer ${token}` } });

function authSuite(store: string, databaseUrl: () => string | undefined) {
  describe(`auth service over gRPC (${store})`, () => {
    let h: AuthHarness;
    const email = () => `user-${randomUUID()}@example.com`;
    const signUp = async (address = email()) => {
      await h.client.register({ email: address, password, name: "Test User" });
      return { email: address, ...(await h.client.login({ email: address, password })) };
    };

    beforeAll(async () => {
      h = await startAuthHarness({ databaseUrl: databaseUrl(), adminEmails: ["admin@example.com"] });
    });
    afterAll(() => h?.stop());

    it("reports SERVING through grpc.health.v1 for the server and the auth service", async () => {
      expect(await healthCheck(h.address, "")).toBe("SERVING");
      expect(await healthCheck(h.address, "mesh.auth.v1.AuthService")).toBe("SERVING");
    });

    it("lists and describes its services through grpc.reflection.v1", async () => {
      const services = await reflectServices(h.address);
      expect(services).toEqual(expect.arrayContaining(["mesh.auth.v1.AuthService", "grpc.health.v1.Health"]));
      expect(await reflectFiles(h.address, { file_containing_symbol: "mesh.auth.v1.AuthService" }))
        .toContain("mesh/auth/v1/auth.proto");
      // Imports needed only for options are fetched by name, as grpcurl does.
      expect(await reflectFiles(h.address, { file_by_filename: "google/api/annotations.proto" }))
        .toContain("google/api/annotations.proto");
    });

    it("registers, logs in and answers the profile of the bearer", async () => {
      const address = email();
      const reg = await h.client.register({ email: `  ${address.toUpperCase()} `, password, name: "Ann" });
      expect(reg.message).toBe("Registration successful");
      expect(reg.user?.email).toBe(address);
      const login = await h.client.login({ email: address, password });
      expect(login.tokenType).toBe("Bearer");
      expect(login.expiresIn).toBe(900);
      const profile = await h.client.getProfile({}, bearer(login.accessToken));
      expect(profile.user).toMatchObject({ id: reg.user?.id, email: address, name: "Ann", roles: ["user"] });
    });

    it("serves a plain grpc-js client that knows only proto/ (register, login, profile)", async () => {
      const address = email();
      const call = (method: string, req: object, md?: Record<string, string>) =>
        callWithProto(h.address, "mesh/auth/v1/auth.proto", "mesh.auth.v1.AuthService", method, req, md);
      await call("Register", { email: address, password, name: "Polly" });
      const login = await call("Login", { email: address, password });
      expect(login.token_type).toBe("Bearer");
      const profile = await call("GetProfile", {}, { authorization: `Bearer ${login.access_token as string}` });
      expect((profile.user as { email: string }).email).toBe(address);
    });

    it("refuses a second registration of the same email with ALREADY_EXISTS", async () => {
      const { email: taken } = await signUp();
      const f = await failure(h.client.register({ email: taken.toUpperCase(), password, name: "Again" }));
      expect(f.code).toBe(Code.AlreadyExists);
    });

    it("names every bad registration field with INVALID_ARGUMENT", async () => {
      const f = await failure(h.client.register({ email: "not-an-email", password: "short", name: "" }));
      expect(f.code).toBe(Code.InvalidArgument);
      expect(fieldViolationsOf(f.err).map((v) => v.field).sort()).toEqual(["email", "name", "password"]);
    });

    it("answers an unknown email and a wrong password alike", async () => {
      const { email: known } = await signUp();
      const unknown = await failure(h.client.login({ email: email(), password }));
      const wrong = await failure(h.client.login({ email: known, password: "wrong password 1" }));
      expect(unknown.code).toBe(Code.Unauthenticated);
      expect({ code: unknown.code, message: unknown.message }).toEqual({ code: wrong.code, message: wrong.message });
    });

    it("takes alike long to refuse an unknown email and a wrong password", async () => {
      // Both paths run one argon2id verification (~tens of ms); without the
      // dummy verification the unknown-email path would answer ~100x faster.
      const { email: known } = await signUp();
      const time = async (e: string) => {
        const t0 = performance.now();
        await h.client.login({ email: e, password: "wrong password 1" }).catch(() => undefined);
        return performance.now() - t0;
      };
      const unknown: number[] = [];
      const wrong: number[] = [];
      for (let i = 0; i < 7; i++) {
        unknown.push(await time(email()));
        wrong.push(await time(known));
      }
      const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
      const ratio = median(unknown) / median(wrong);
      expect(ratio).toBeGreaterThan(0.5);
      expect(ratio).toBeLessThan(2);
    });

    it("rotates a refresh token and revokes the whole family when a rotated token is presented again", async () => {
      const s = await signUp();
      const next = await h.client.refresh({ refreshToken: s.refreshToken });
      expect(next.refreshToken).not.toBe(s.refreshToken);
      const reuse = await failure(h.client.refresh({ refreshToken: s.refreshToken }));
      expect([reuse.code, reuse.reason]).toEqual([Code.Unauthenticated, "TOKEN_REUSED"]);
      const successor = await failure(h.client.refresh({ refreshToken: next.refreshToken }));
      expect([successor.code, successor.reason]).toEqual([Code.Unauthenticated, "INVALID_TOKEN"]);
    });

    it("never leaves two live successors when one refresh token is used twice at once", async () => {
      const s = await signUp();
      const results = await Promise.allSettled([
        h.client.refresh({ refreshToken: s.refreshToken }),
        h.client.refresh({ refreshToken: s.refreshToken }),
      ]);
      const successors = results.flatMap((r) => (r.status === "fulfilled" ? [r.value.refreshToken] : []));
      expect(successors.length).toBeLessThanOrEqual(1);
      const live = await Promise.allSettled(successors.map((t) => h.client.refresh({ refreshToken: t })));
      expect(live.filter((r) => r.status === "fulfilled").length).toBeLessThanOrEqual(1);
    });

    it("revokes the access token and the session on logout", async () => {
      const s = await signUp();
      expect((await h.client.logout({ refreshToken: s.refreshToken }, bearer(s.accessToken))).message).toBe("Logged out successfully");
      const profile = await failure(h.client.getProfile({}, bearer(s.accessToken)));
      expect([profile.code, profile.reason]).toEqual([Code.Unauthenticated, "TOKEN_REVOKED"]);
      const refresh = await failure(h.client.refresh({ refreshToken: s.refreshToken }));
      expect(refresh.code).toBe(Code.Unauthenticated);
    });

    it("publishes a logged-out token's jti to revocation readers and watchers", async () => {
      const s = await signUp();
      const jti = JSON.parse(new TextDecoder().decode(base64url.decode(s.accessToken.split(".")[1]!))).jti as string;
      const before = await h.client.listRevokedTokens({});
      const after = before.tokens.at(-1)?.sequence ?? 0n;
      const ctrl = new AbortController();
      const watched = (async () => {
        for await (const m of h.client.watchRevokedTokens({ afterSequence: after }, { signal: ctrl.signal })) {
          if (m.token?.jti === jti) return m.token;
        }
        return undefined;
      })();
      await h.client.logout({}, bearer(s.accessToken));
      const seen = await watched;
      ctrl.abort();
      expect(seen?.sequence).toBeGreaterThan(after);
      const listed = await h.client.listRevokedTokens({ afterSequence: after });
      expect(listed.tokens.map((t) => t.jti)).toContain(jti);
    });

    it("requires a bearer token for the profile", async () => {
      const f = await failure(h.client.getProfile({}));
      expect([f.code, f.reason]).toEqual([Code.Unauthenticated, "MISSING_TOKEN"]);
    });

    it("refuses tokens not signed with EdDSA by one of its keys", async () => {
      const s = await signUp();
      const claims = { roles: ["admin"] };
      const unsigned = new UnsecuredJWT(claims).setSubject(s.user!.id).setIssuer(h.issuer).setAudience(h.audience)
        .setJti(randomUUID()).setExpirationTime("5m").encode();
      const jwk = (await h.client.getJwks({})).keys[0]!;
      const hs256 = await new SignJWT(claims).setProtectedHeader({ alg: "HS256", kid: jwk.kid })
        .setSubject(s.user!.id).setIssuer(h.issuer).setAudience(h.audience).setJti(randomUUID()).setExpirationTime("5m")
        .sign(new TextEncoder().encode(jwk.x));
      const foreign = await generateKeyPair("EdDSA", { crv: "Ed25519" });
      const forged = await new SignJWT(claims).setProtectedHeader({ alg: "EdDSA", kid: jwk.kid })
        .setSubject(s.user!.id).setIssuer(h.issuer).setAudience(h.audience).setJti(randomUUID()).setExpirationTime("5m")
        .sign(foreign.privateKey);
      for (const token of [unsigned, hs256, forged]) {
        const f = await failure(h.client.getProfile({}, bearer(token)));
        expect([f.code, f.reason]).toEqual([Code.Unauthenticated, "INVALID_TOKEN"]);
      }
    });

    it("refuses its own signature with the wrong audience or issuer", async () => {
      const s = await signUp();
      const sign = (aud: string, iss: string) => new SignJWT({ roles: ["user"] })
        .setProtectedHeader({ alg: "EdDSA", kid: h.signingKey.kid }).setSubject(s.user!.id)
        .setIssuer(iss).setAudience(aud).setJti(randomUUID()).setIssuedAt().setExpirationTime("5m").sign(h.signingKey.key);
      const good = await sign(h.audience, h.issuer);
      expect((await h.client.getProfile({}, bearer(good))).user?.id).toBe(s.user!.id);
      for (const token of [await sign("other-audience", h.issuer), await sign(h.audience, "other-issuer")]) {
        const f = await failure(h.client.getProfile({}, bearer(token)));
        expect([f.code, f.reason]).toEqual([Code.Unauthenticated, "INVALID_TOKEN"]);
      }
    });

    it("refuses an expired access token with reason TOKEN_EXPIRED", async () => {
      const s = await signUp();
      h.advance(16 * 60_000);
      try {
        const f = await failure(h.client.getProfile({}, bearer(s.accessToken)));
        expect([f.code, f.reason]).toEqual([Code.Unauthenticated, "TOKEN_EXPIRED"]);
      } finally {
        h.advance(-16 * 60_000);
      }
    });

    it("verifies an email once with the mailed token", async () => {
      const s = await signUp();
      const token = await h.mailedToken(s.email, "verify_email");
      expect((await h.client.verifyEmail({ token })).message).toBe("Email verified successfully");
      expect((await h.client.getProfile({}, bearer(s.accessToken))).user?.emailVerified).toBe(true);
      const again = await failure(h.client.verifyEmail({ token }));
      expect(again.code).toBe(Code.InvalidArgument);
      expect(fieldViolationsOf(again.err).map((v) => v.field)).toEqual(["token"]);
    });

    it("answers forgot-password identically for known and unknown emails", async () => {
      const s = await signUp();
      const known = await h.client.forgotPassword({ email: s.email });
      const unknown = await h.client.forgotPassword({ email: email() });
      expect(known.message).toBe("If email exists, reset link has been sent");
      expect(unknown.message).toBe(known.message);
    });

    it("resets the password once with the mailed token and revokes every session", async () => {
      const s = await signUp();
      await h.client.forgotPassword({ email: s.email });
      const token = await h.mailedToken(s.email, "reset_password");
      const newPassword = "another secret 2";
      expect((await h.client.resetPassword({ token, newPassword })).message).toBe("Password reset successfully");
      const reuse = await failure(h.client.resetPassword({ token, newPassword: "third secret 3" }));
      expect(reuse.code).toBe(Code.InvalidArgument);
      expect((await failure(h.client.refresh({ refreshToken: s.refreshToken }))).code).toBe(Code.Unauthenticated);
      expect((await failure(h.client.login({ email: s.email, password }))).code).toBe(Code.Unauthenticated);
      expect((await h.client.login({ email: s.email, password: newPassword })).user?.id).toBe(s.user!.id);
    });

    it("lets an admin deactivate a user, who then gets PERMISSION_DENIED at login", async () => {
      const admin = await signUp("admin@example.com").catch(async () => ({
        email: "admin@example.com", ...(await h.client.login({ email: "admin@example.com", password })),
      }));
      expect(admin.user?.roles).toContain("admin");
      const s = await signUp();
      const denied = await failure(h.client.setUserActive({ userId: admin.user!.id, active: false }, bearer(s.accessToken)));
      expect(denied.code).toBe(Code.PermissionDenied);
      await h.client.setUserActive({ userId: s.user!.id, active: false }, bearer(admin.accessToken));
      expect((await failure(h.client.login({ email: s.email, password }))).code).toBe(Code.PermissionDenied);
      expect((await failure(h.client.refresh({ refreshToken: s.refreshToken }))).code).toBe(Code.Unauthenticated);
    });

    it("publishes its signing key in the JWKS without private members", async () => {
      const { keys } = await h.client.getJwks({});
      expect(keys.map((k) => k.kid)).toContain(h.signingKey.kid);
      expect(keys[0]).toMatchObject({ kty: "OKP", crv: "Ed25519", alg: "EdDSA", use: "sig" });
      expect(Object.keys(keys[0]!)).not.toContain("d");
    });
  });
}

authSuite("embedded PGlite", () => undefined);
describeWithServer("TEST_DATABASE_URL", "auth service over gRPC with PostgreSQL", (url) => {
  authSuite("PostgreSQL", () => url);
});
