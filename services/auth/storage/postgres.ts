import pg from "pg";
import { createQuery, withTransaction, type Queryable } from "../../../lib/stores/postgres.js";
import type { AuthStore, OneTimePurpose, OutboxMail, RefreshTokenRecord, RevokedAccessToken, RotationResult, SigningKeyRecord, UserRecord } from "./port.js";

interface UserRow {
  id: string; email: string; name: string; password_hash: string; roles: string[];
  email_verified: boolean; active: boolean; created_at: Date; updated_at: Date;
}

const toUser = (r: UserRow): UserRecord => ({
  id: r.id, email: r.email, name: r.name, passwordHash: r.password_hash, roles: r.roles,
  emailVerified: r.email_verified, active: r.active, createdAt: r.created_at, updatedAt: r.updated_at,
});

/**
 * The auth store over `pg`: the same SQL runs on PostgreSQL and on the
 * embedded PGlite. Driver errors are mapped by `pgError` (lib/stores).
 */
export function createPostgresAuthStore(pool: pg.Pool): AuthStore {
  return bind(pool, pool);
}

function bind(pool: pg.Pool, db: Queryable): AuthStore {
  const q = createQuery(db);
  const inTx = db !== pool;

  const store: AuthStore = {
    transaction: (fn) => (inTx ? fn(store) : withTransaction(pool, (client) => fn(bind(pool, client)))),

    async insertUser(u) {
      await q(`INSERT INTO users (id, email, name, password_hash, roles, email_verified, active, created_at, updated_at)
        VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9)`,
      [u.id, u.email, u.name, u.passwordHash, u.roles, u.emailVerified, u.active, u.createdAt, u.updatedAt], "user");
    },
    async getUserByEmail(email) {
      const { rows } = await q<UserRow>("SELECT * FROM users WHERE email = $1", [email]);
      return rows[0] && toUser(rows[0]);
    },
    async getUserById(id) {
      const { rows } = await q<UserRow>("SELECT * FROM users WHERE id = $1", [id]);
      return rows[0] && toUser(rows[0]);
    },
    async updateUser(id, patch, now) {
      const { rows } = await q<UserRow>(`UPDATE users SET
          password_hash = COALESCE($2, password_hash), email_verified = COALESCE($3, email_verified),
          active = COALESCE($4, active), roles = COALESCE($5, roles), updated_at = $6
        WHERE id = $1 RETURNING *`,
      [id, patch.passwordHash ?? null, patch.emailVerified ?? null, patch.active ?? null, patch.roles ?? null, now]);
      return rows[0] && toUser(rows[0]);
    },

    async insertRefreshToken(t) {
      await q(`INSERT INTO refresh_tokens (token_hash, family_id, user_id, created_at, expires_at)
        VALUES ($1,$2,$3,$4,$5)`, [t.tokenHash, t.familyId, t.userId, t.createdAt, t.expiresAt], "refresh token");
    },
    rotateRefreshToken: (tokenHash, now) => (inTx
      ? rotate(store, q, tokenHash, now)
      : withTransaction(pool, (client) => bind(pool, client).rotateRefreshToken(tokenHash, now))),
    async getRefreshToken(tokenHash) {
      const { rows } = await q<RefreshRow>("SELECT * FROM refresh_tokens WHERE token_hash = $1", [tokenHash]);
      return rows[0] && { ...toRefresh(rows[0]), revoked: rows[0].revoked_at !== null };
    },
    async revokeFamily(familyId, now) {
      await q("UPDATE refresh_tokens SET revoked_at = $2 WHERE family_id = $1 AND revoked_at IS NULL", [familyId, now]);
    },
    async revokeAllRefreshTokens(userId, now) {
      await q("UPDATE refresh_tokens SET revoked_at = $2 WHERE user_id = $1 AND revoked_at IS NULL", [userId, now]);
    },
    async countLiveInFamily(familyId, now) {
      const { rows } = await q<{ n: number }>(`SELECT count(*)::int AS n FROM refresh_tokens
        WHERE family_id = $1 AND rotated_at IS NULL AND revoked_at IS NULL AND expires_at > $2`, [familyId, now]);
      return rows[0]?.n ?? 0;
    },

    async revokeAccessToken(jti, expiresAt, now) {
      if (!inTx) return withTransaction(pool, (client) => bind(pool, client).revokeAccessToken(jti, expiresAt, now));
      // Readers page by sequence, so sequences must become visible in order:
      // this lock, held until commit, serializes revocations so none commits
      // with a lower sequence after a reader has passed it.
      await q("SELECT pg_advisory_xact_lock(hashtext('mesh.auth.revoked_access_tokens'))");
      await q(`INSERT INTO revoked_access_tokens (jti, expires_at, revoked_at) VALUES ($1,$2,$3)
        ON CONFLICT (jti) DO NOTHING`, [jti, expiresAt, now]);
    },
    async isAccessTokenRevoked(jti) {
      const { rows } = await q("SELECT 1 FROM revoked_access_tokens WHERE jti = $1", [jti]);
      return rows.length > 0;
    },
    async listRevokedAccessTokens(afterSequence, limit, now) {
      const { rows } = await q<{ sequence: string; jti: string; expires_at: Date }>(`SELECT sequence, jti, expires_at
        FROM revoked_access_tokens WHERE sequence > $1 AND expires_at > $2 ORDER BY sequence LIMIT $3`,
      [afterSequence.toString(), now, limit]);
      return rows.map((r): RevokedAccessToken => ({ jti: r.jti, expiresAt: r.expires_at, sequence: BigInt(r.sequence) }));
    },

    async insertOneTimeToken(t) {
      await q(`INSERT INTO one_time_tokens (token_hash, purpose, user_id, created_at, expires_at) VALUES ($1,$2,$3,$4,$5)`,
        [t.tokenHash, t.purpose, t.userId, t.createdAt, t.expiresAt], "token");
    },
    async consumeOneTimeToken(tokenHash, purpose: OneTimePurpose, now) {
      const { rows } = await q<{ user_id: string }>(`UPDATE one_time_tokens SET used_at = $3
        WHERE token_hash = $1 AND purpose = $2 AND used_at IS NULL AND expires_at > $3 RETURNING user_id`,
      [tokenHash, purpose, now]);
      return rows[0]?.user_id;
    },
    async expireOneTimeTokens(userId, purpose, now) {
      await q("UPDATE one_time_tokens SET expires_at = $3 WHERE user_id = $1 AND purpose = $2 AND used_at IS NULL AND expires_at > $3",
        [userId, purpose, now]);
    },

    async enqueueMail(m) {
      await q(`INSERT INTO mail_outbox (id, recipient, template, payload, created_at, next_attempt_at)
        VALUES ($1,$2,$3,$4,$5,$5)`, [m.id, m.recipient, m.template, JSON.stringify(m.payload), m.createdAt]);
    },
    async claimDueMail(limit, now) {
      const { rows } = await q<{ id: string; recipient: string; template: string; payload: Record<string, string>; attempts: number }>(
        `SELECT id, recipient, template, payload, attempts FROM mail_outbox
         WHERE sent_at IS NULL AND next_attempt_at <= $1 ORDER BY next_attempt_at LIMIT $2 FOR UPDATE SKIP LOCKED`,
        [now, limit]);
      return rows.map((r): OutboxMail => ({ ...r }));
    },
    async markMailSent(id, now) {
      await q("UPDATE mail_outbox SET sent_at = $2, attempts = attempts + 1, last_error = NULL WHERE id = $1", [id, now]);
    },
    async markMailFailed(id, error, nextAttemptAt) {
      await q("UPDATE mail_outbox SET attempts = attempts + 1, last_error = $2, next_attempt_at = $3 WHERE id = $1",
        [id, error.slice(0, 1000), nextAttemptAt]);
    },

    async listSigningKeys() {
      const { rows } = await q<{ kid: string; alg: string; private_jwk: Record<string, unknown>; public_jwk: Record<string, unknown>; created_at: Date }>(
        "SELECT * FROM signing_keys ORDER BY created_at, kid");
      return rows.map((r): SigningKeyRecord => ({ kid: r.kid, alg: r.alg, privateJwk: r.private_jwk, publicJwk: r.public_jwk, createdAt: r.created_at }));
    },
    async insertSigningKey(k) {
      await q("INSERT INTO signing_keys (kid, alg, private_jwk, public_jwk, created_at) VALUES ($1,$2,$3,$4,$5)",
        [k.kid, k.alg, JSON.stringify(k.privateJwk), JSON.stringify(k.publicJwk), k.createdAt], "signing key");
    },
  };
  return store;
}

interface RefreshRow {
  token_hash: string; family_id: string; user_id: string; created_at: Date; expires_at: Date;
  rotated_at: Date | null; revoked_at: Date | null;
}

const toRefresh = (r: RefreshRow): RefreshTokenRecord => ({
  tokenHash: r.token_hash, familyId: r.family_id, userId: r.user_id, createdAt: r.created_at, expiresAt: r.expires_at,
});

type Q = ReturnType<typeof createQuery>;

// The UPDATE is a compare-and-set: of two concurrent rotations of one token,
// PostgreSQL's row lock lets exactly one match `rotated_at IS NULL`.
async function rotate(tx: AuthStore, q: Q, tokenHash: string, now: Date): Promise<RotationResult> {
  const { rows } = await q<RefreshRow>(`UPDATE refresh_tokens SET rotated_at = $2
    WHERE token_hash = $1 AND rotated_at IS NULL AND revoked_at IS NULL AND expires_at > $2 RETURNING *`,
  [tokenHash, now]);
  if (rows[0]) return { kind: "rotated", previous: toRefresh(rows[0]) };
  const existing = await q<RefreshRow>("SELECT * FROM refresh_tokens WHERE token_hash = $1", [tokenHash]);
  const row = existing.rows[0];
  if (row?.rotated_at) {
    await tx.revokeFamily(row.family_id, now);
    return { kind: "reused", familyId: row.family_id, userId: row.user_id };
  }
  return { kind: "invalid" };
}
