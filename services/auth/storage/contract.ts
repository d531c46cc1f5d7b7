import { createHash, randomUUID } from "node:crypto";
import { Code, ConnectError } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { AuthStore, RefreshTokenRecord, SigningKeyRecord, UserRecord } from "./port.js";
import { rejectionOf } from "../../../test/support/rejection.js";

/** A fresh, migrated, empty store and how to dispose of it. */
export interface OpenedAuthStore {
  readonly store: AuthStore;
  close(): Promise<void>;
}

// Every instant is fixed: the contract never reads the wall clock.
const T0 = Date.parse("2026-01-01T00:00:00.000Z");
const HOUR = 3_600;
/** The instant `seconds` after T0. */
const at = (seconds: number): Date => new Date(T0 + seconds * 1_000);
const FAR = 1_000_000;

const randomHash = (): string => createHash("sha256").update(randomUUID()).digest("hex");

function makeUser(overrides: Partial<UserRecord> = {}): UserRecord {
  const id = randomUUID();
  return {
    id, email: `user-${id}@example.test`, name: "Ada Lovelace", passwordHash: `$argon2id$v=19$m=1024,t=1,p=1$${id}`,
    roles: ["user"], emailVerified: false, active: true, createdAt: at(0), updatedAt: at(0), ...overrides,
  };
}

function makeRefreshToken(userId: string, overrides: Partial<RefreshTokenRecord> = {}): RefreshTokenRecord {
  return { tokenHash: randomHash(), familyId: randomUUID(), userId, createdAt: at(0), expiresAt: at(24 * HOUR), ...overrides };
}

function makeSigningKey(overrides: Partial<SigningKeyRecord> = {}): SigningKeyRecord {
  const kid = overrides.kid ?? `kid-${randomUUID()}`;
  const pub = { kty: "OKP", crv: "Ed25519", x: `x-${kid}`, kid, alg: "EdDSA", use: "sig", key_ops: ["verify"] };
  return { kid, alg: "EdDSA", privateJwk: { ...pub, d: `d-${kid}`, key_ops: ["sign"] }, publicJwk: pub, createdAt: at(0), ...overrides };
}


/**
 * The AuthStore contract (services/auth/storage/port.ts), run against every
 * adapter. `open` is called once per suite; tests stay independent of each
 * other through unique ids, emails, hashes and jtis, and read only their own rows.
 */
export function authStoreContract(name: string, open: () => Promise<OpenedAuthStore>): void {
  describe(`AuthStore contract (${name})`, () => {
    let opened: OpenedAuthStore | undefined;
    let store: AuthStore;
    beforeAll(async () => {
      opened = await open();
      store = opened.store;
    });
    afterAll(async () => {
      await opened?.close();
    });

    const seedUser = async (overrides: Partial<UserRecord> = {}) => {
      const user = makeUser(overrides);
      await store.insertUser(user);
      return user;
    };
    const seedToken = async (overrides: Partial<RefreshTokenRecord> = {}) => {
      const token = makeRefreshToken(overrides.userId ?? (await seedUser()).id, overrides);
      await store.insertRefreshToken(token);
      return token;
    };
    const isRevoked = async (tokenHash: string) => (await store.getRefreshToken(tokenHash))?.revoked;
    const claim = (now: Date, limit = FAR) => store.transaction((tx) => tx.claimDueMail(limit, now));
    const enqueue = async (createdAt = at(0)) => {
      const mail = { id: randomUUID(), recipient: `r-${randomUUID()}@example.test`, template: "verify_email", payload: { name: "Ada", link: `https://x.test/v?token=${randomUUID()}` }, createdAt };
      await store.enqueueMail(mail);
      return mail;
    };
    const revokedEntries = async (jtis: readonly string[], after = 0n, now = at(0)) =>
      (await store.listRevokedAccessTokens(after, FAR, now)).filter((r) => jtis.includes(r.jti));
    const revokeAll = async (jtis: readonly string[], expiresAt = at(HOUR)) => {
      for (const jti of jtis) await store.revokeAccessToken(jti, expiresAt, at(0));
    };

    describe("users", () => {
      it("round-trips every field of an inserted user by id", async () => {
        const user = await seedUser({ roles: ["user", "admin"], emailVerified: true, active: false, createdAt: at(1), updatedAt: at(2) });
        expect(await store.getUserById(user.id)).toEqual(user);
      });

      it("finds an inserted user by email", async () => {
        const user = await seedUser();
        expect(await store.getUserByEmail(user.email)).toEqual(user);
      });

      it("rejects a taken email with AlreadyExists", async () => {
        const user = await seedUser();
        const err = await rejectionOf(store.insertUser(makeUser({ email: user.email })));
        expect(err.code).toBe(Code.AlreadyExists);
      });

      it("rejects a taken id with AlreadyExists", async () => {
        const user = await seedUser();
        const err = await rejectionOf(store.insertUser(makeUser({ id: user.id })));
        expect(err.code).toBe(Code.AlreadyExists);
      });

      it("answers undefined for an unknown email", async () => {
        expect(await store.getUserByEmail(`absent-${randomUUID()}@example.test`)).toBeUndefined();
      });

      it("answers undefined for an unknown id", async () => {
        expect(await store.getUserById(randomUUID())).toBeUndefined();
      });

      it("updates only the given fields and bumps updatedAt", async () => {
        const user = await seedUser();
        const expected = { ...user, emailVerified: true, updatedAt: at(60) };
        expect(await store.updateUser(user.id, { emailVerified: true }, at(60))).toEqual(expected);
        expect(await store.getUserById(user.id)).toEqual(expected);
      });

      it("applies false flags and replaced roles", async () => {
        const user = await seedUser({ emailVerified: true });
        const patch = { active: false, emailVerified: false, roles: ["auditor"], passwordHash: "$argon2id$new" };
        expect(await store.updateUser(user.id, patch, at(60))).toEqual({ ...user, ...patch, updatedAt: at(60) });
      });

      it("answers undefined when updating an unknown user", async () => {
        expect(await store.updateUser(randomUUID(), { active: false }, at(60))).toBeUndefined();
      });
    });

    describe("refresh tokens", () => {
      it("round-trips an inserted token, not revoked", async () => {
        const token = await seedToken();
        expect(await store.getRefreshToken(token.tokenHash)).toEqual({ ...token, revoked: false });
      });

      it("answers undefined for an unknown token hash", async () => {
        expect(await store.getRefreshToken(randomHash())).toBeUndefined();
      });

      it("rejects a duplicate token hash with AlreadyExists", async () => {
        const token = await seedToken();
        const err = await rejectionOf(store.insertRefreshToken(makeRefreshToken(token.userId, { tokenHash: token.tokenHash })));
        expect(err.code).toBe(Code.AlreadyExists);
      });

      it("rotates a live token, answering its record", async () => {
        const token = await seedToken();
        expect(await store.rotateRefreshToken(token.tokenHash, at(60))).toEqual({ kind: "rotated", previous: token });
      });

      it("rotates a live token inside a caller's transaction", async () => {
        const token = await seedToken();
        const result = await store.transaction((tx) => tx.rotateRefreshToken(token.tokenHash, at(60)));
        expect(result).toEqual({ kind: "rotated", previous: token });
      });

      it("no longer counts a rotated token as live", async () => {
        const token = await seedToken();
        await store.rotateRefreshToken(token.tokenHash, at(60));
        expect(await store.countLiveInFamily(token.familyId, at(60))).toBe(0);
      });

      it("answers reused with family and user when a rotated token is presented again", async () => {
        const token = await seedToken();
        await store.rotateRefreshToken(token.tokenHash, at(60));
        expect(await store.rotateRefreshToken(token.tokenHash, at(120)))
          .toEqual({ kind: "reused", familyId: token.familyId, userId: token.userId });
      });

      it("revokes every token of the family on reuse", async () => {
        const first = await seedToken();
        await store.rotateRefreshToken(first.tokenHash, at(60));
        const successor = await seedToken({ userId: first.userId, familyId: first.familyId, createdAt: at(60) });
        await store.rotateRefreshToken(first.tokenHash, at(120));
        expect([await isRevoked(first.tokenHash), await isRevoked(successor.tokenHash)]).toEqual([true, true]);
        expect(await store.countLiveInFamily(first.familyId, at(120))).toBe(0);
      });

      it("answers invalid for an unknown token", async () => {
        expect(await store.rotateRefreshToken(randomHash(), at(60))).toEqual({ kind: "invalid" });
      });

      it("answers invalid for an expired token", async () => {
        const token = await seedToken({ expiresAt: at(HOUR) });
        expect(await store.rotateRefreshToken(token.tokenHash, at(2 * HOUR))).toEqual({ kind: "invalid" });
      });

      it("answers invalid for a token of a revoked family", async () => {
        const token = await seedToken();
        await store.revokeFamily(token.familyId, at(30));
        expect(await store.rotateRefreshToken(token.tokenHash, at(60))).toEqual({ kind: "invalid" });
      });

      it("rotates exactly once when two rotations of one token race", async () => {
        const token = await seedToken();
        const results = await Promise.all([
          store.rotateRefreshToken(token.tokenHash, at(60)), store.rotateRefreshToken(token.tokenHash, at(60)),
        ]);
        const kinds = results.map((r) => r.kind);
        expect(kinds.filter((k) => k === "rotated")).toHaveLength(1);
        expect(kinds.filter((k) => k !== "rotated")).toEqual([expect.stringMatching(/^(reused|invalid)$/)]);
      });

      it("rotates many distinct tokens concurrently", async () => {
        // More calls than a typical pool has connections (default 10).
        const tokens = await Promise.all(Array.from({ length: 16 }, () => seedToken()));
        const results = await Promise.all(tokens.map((t) => store.rotateRefreshToken(t.tokenHash, at(60))));
        expect(results.map((r) => r.kind)).toEqual(tokens.map(() => "rotated"));
      });

      it("revokes every token of a family and no other", async () => {
        const token = await seedToken();
        const sibling = await seedToken({ userId: token.userId, familyId: token.familyId });
        const otherFamily = await seedToken({ userId: token.userId });
        await store.revokeFamily(token.familyId, at(60));
        expect([await isRevoked(token.tokenHash), await isRevoked(sibling.tokenHash), await isRevoked(otherFamily.tokenHash)])
          .toEqual([true, true, false]);
      });

      it("revokes every refresh token of a user and no other user's", async () => {
        const token = await seedToken();
        const otherFamily = await seedToken({ userId: token.userId });
        const otherUser = await seedToken();
        await store.revokeAllRefreshTokens(token.userId, at(60));
        expect([await isRevoked(token.tokenHash), await isRevoked(otherFamily.tokenHash), await isRevoked(otherUser.tokenHash)])
          .toEqual([true, true, false]);
      });

      it("counts the live tokens of a family only", async () => {
        const token = await seedToken();
        await seedToken({ userId: token.userId, familyId: token.familyId });
        await seedToken({ userId: token.userId });
        expect(await store.countLiveInFamily(token.familyId, at(60))).toBe(2);
      });

      it("does not count expired tokens as live", async () => {
        const token = await seedToken({ expiresAt: at(HOUR) });
        await seedToken({ userId: token.userId, familyId: token.familyId, expiresAt: at(3 * HOUR) });
        expect(await store.countLiveInFamily(token.familyId, at(2 * HOUR))).toBe(1);
      });

      it("does not count revoked tokens as live", async () => {
        const token = await seedToken();
        await store.revokeFamily(token.familyId, at(30));
        expect(await store.countLiveInFamily(token.familyId, at(60))).toBe(0);
      });
    });

    describe("transactions", () => {
      it("commits the writes of fn and answers its result", async () => {
        const user = makeUser();
        const result = await store.transaction(async (tx) => {
          await tx.insertUser(user);
          return "done";
        });
        expect(result).toBe("done");
        expect(await store.getUserById(user.id)).toEqual(user);
      });

      it("lets fn read its own uncommitted writes", async () => {
        const user = makeUser();
        const seen = await store.transaction(async (tx) => {
          await tx.insertUser(user);
          return tx.getUserById(user.id);
        });
        expect(seen).toEqual(user);
      });

      it("rolls back every write and rethrows when fn throws", async () => {
        const user = makeUser();
        const jti = randomUUID();
        const mailId = randomUUID();
        const boom = new Error("boom");
        const run = store.transaction(async (tx) => {
          await tx.insertUser(user);
          await tx.revokeAccessToken(jti, at(HOUR), at(0));
          await tx.enqueueMail({ id: mailId, recipient: user.email, template: "verify_email", payload: {}, createdAt: at(0) });
          throw boom;
        });
        await expect(run).rejects.toBe(boom);
        expect(await store.getUserById(user.id)).toBeUndefined();
        expect(await store.isAccessTokenRevoked(jti)).toBe(false);
        expect((await claim(at(60))).map((m) => m.id)).not.toContain(mailId);
      });
    });

    describe("revoked access tokens", () => {
      it("reports a revoked jti as revoked", async () => {
        const jti = randomUUID();
        await store.revokeAccessToken(jti, at(HOUR), at(0));
        expect(await store.isAccessTokenRevoked(jti)).toBe(true);
      });

      it("reports an unknown jti as not revoked", async () => {
        expect(await store.isAccessTokenRevoked(randomUUID())).toBe(false);
      });

      it("keeps one revocation per jti when revoked twice", async () => {
        const jti = randomUUID();
        await store.revokeAccessToken(jti, at(HOUR), at(0));
        await store.revokeAccessToken(jti, at(2 * HOUR), at(10));
        expect((await revokedEntries([jti])).map((r) => ({ jti: r.jti, expiresAt: r.expiresAt }))).toEqual([{ jti, expiresAt: at(HOUR) }]);
      });

      it("lists revocations in order with strictly increasing bigint sequences", async () => {
        const jtis = [randomUUID(), randomUUID(), randomUUID()];
        await revokeAll(jtis);
        const listed = await revokedEntries(jtis);
        expect(listed.map((r) => r.jti)).toEqual(jtis);
        expect(listed.map((r) => typeof r.sequence)).toEqual(["bigint", "bigint", "bigint"]);
        expect(listed.every((r, i) => i === 0 || r.sequence > listed[i - 1]!.sequence)).toBe(true);
      });

      it("lists only revocations after the given sequence", async () => {
        const jtis = [randomUUID(), randomUUID(), randomUUID()];
        await revokeAll(jtis);
        const [first] = await revokedEntries(jtis);
        expect((await revokedEntries(jtis, first!.sequence)).map((r) => r.jti)).toEqual(jtis.slice(1));
      });

      it("lists at most limit revocations", async () => {
        const jtis = [randomUUID(), randomUUID(), randomUUID()];
        await revokeAll(jtis);
        const [first] = await revokedEntries(jtis);
        // Tests of one suite run one at a time, so nothing was revoked between these three.
        expect((await store.listRevokedAccessTokens(first!.sequence, 1, at(0))).map((r) => r.jti)).toEqual([jtis[1]]);
      });

      it("leaves out revocations whose token has expired", async () => {
        const expired = randomUUID();
        const live = randomUUID();
        await store.revokeAccessToken(expired, at(60), at(0));
        await store.revokeAccessToken(live, at(HOUR), at(0));
        expect((await revokedEntries([expired, live], 0n, at(120))).map((r) => r.jti)).toEqual([live]);
      });
    });

    describe("one-time tokens", () => {
      const seedOneTime = async (purpose: "verify_email" | "reset_password" = "verify_email", userId?: string, expiresAt = at(HOUR)) => {
        const t = { tokenHash: randomHash(), purpose, userId: userId ?? (await seedUser()).id, createdAt: at(0), expiresAt };
        await store.insertOneTimeToken(t);
        return t;
      };

      it("consumes a token, answering its user id", async () => {
        const t = await seedOneTime();
        expect(await store.consumeOneTimeToken(t.tokenHash, t.purpose, at(60))).toBe(t.userId);
      });

      it("answers undefined when a used token is consumed again", async () => {
        const t = await seedOneTime();
        await store.consumeOneTimeToken(t.tokenHash, t.purpose, at(60));
        expect(await store.consumeOneTimeToken(t.tokenHash, t.purpose, at(120))).toBeUndefined();
      });

      it("answers undefined for a token of another purpose", async () => {
        const t = await seedOneTime("verify_email");
        expect(await store.consumeOneTimeToken(t.tokenHash, "reset_password", at(60))).toBeUndefined();
      });

      it("leaves a token presented for another purpose unused", async () => {
        const t = await seedOneTime("verify_email");
        await store.consumeOneTimeToken(t.tokenHash, "reset_password", at(60));
        expect(await store.consumeOneTimeToken(t.tokenHash, "verify_email", at(120))).toBe(t.userId);
      });

      it("answers undefined for an expired token", async () => {
        const t = await seedOneTime("reset_password", undefined, at(HOUR));
        expect(await store.consumeOneTimeToken(t.tokenHash, t.purpose, at(2 * HOUR))).toBeUndefined();
      });

      it("answers undefined for an unknown token", async () => {
        expect(await store.consumeOneTimeToken(randomHash(), "verify_email", at(60))).toBeUndefined();
      });

      it("makes a user's older unused tokens of a purpose unusable when expired", async () => {
        const t = await seedOneTime("reset_password");
        await store.expireOneTimeTokens(t.userId, "reset_password", at(60));
        expect(await store.consumeOneTimeToken(t.tokenHash, t.purpose, at(60))).toBeUndefined();
      });

      it("leaves a user's tokens of another purpose usable when expiring one purpose", async () => {
        const t = await seedOneTime("verify_email");
        await store.expireOneTimeTokens(t.userId, "reset_password", at(60));
        expect(await store.consumeOneTimeToken(t.tokenHash, t.purpose, at(60))).toBe(t.userId);
      });
    });

    describe("mail outbox", () => {
      it("claims due mail with its payload inside a transaction", async () => {
        const mail = await enqueue();
        const claimed = (await claim(at(60))).find((m) => m.id === mail.id);
        expect(claimed).toEqual({ id: mail.id, recipient: mail.recipient, template: mail.template, payload: mail.payload, attempts: 0 });
      });

      it("does not claim mail that is not yet due", async () => {
        const mail = await enqueue(at(HOUR));
        expect((await claim(at(60))).map((m) => m.id)).not.toContain(mail.id);
      });

      it("claims at most limit mails", async () => {
        await enqueue();
        await enqueue();
        expect(await claim(at(60), 1)).toHaveLength(1);
      });

      it("no longer claims mail marked sent", async () => {
        const mail = await enqueue();
        await store.transaction((tx) => tx.markMailSent(mail.id, at(60)));
        expect((await claim(at(120))).map((m) => m.id)).not.toContain(mail.id);
      });

      it("hides mail marked failed until its next attempt", async () => {
        const mail = await enqueue();
        await store.transaction((tx) => tx.markMailFailed(mail.id, "smtp down", at(HOUR)));
        expect((await claim(at(HOUR - 1))).map((m) => m.id)).not.toContain(mail.id);
      });

      it("claims mail marked failed again at its next attempt, attempts incremented", async () => {
        const mail = await enqueue();
        await store.transaction((tx) => tx.markMailFailed(mail.id, "smtp down", at(HOUR)));
        expect((await claim(at(HOUR + 1))).find((m) => m.id === mail.id)).toMatchObject({ id: mail.id, attempts: 1, payload: mail.payload });
      });
    });

    describe("signing keys", () => {
      it("lists signing keys in creation order with their JWKs", async () => {
        // Neither insertion order nor kid order is creation order here.
        const later = makeSigningKey({ kid: `a-${randomUUID()}`, createdAt: at(2 * HOUR) });
        const earlier = makeSigningKey({ kid: `b-${randomUUID()}`, createdAt: at(HOUR) });
        await store.insertSigningKey(later);
        await store.insertSigningKey(earlier);
        const mine = (await store.listSigningKeys()).filter((k) => k.kid === later.kid || k.kid === earlier.kid);
        expect(mine).toEqual([earlier, later]);
      });

      it("rejects a duplicate kid with AlreadyExists", async () => {
        const key = makeSigningKey();
        await store.insertSigningKey(key);
        const err = await rejectionOf(store.insertSigningKey(makeSigningKey({ kid: key.kid })));
        expect(err.code).toBe(Code.AlreadyExists);
      });
    });
  });
}
