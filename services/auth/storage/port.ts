/** A user row. `email` is normalized; `passwordHash` is an argon2id PHC string. */
export interface UserRecord {
  readonly id: string;
  readonly email: string;
  readonly name: string;
  readonly passwordHash: string;
  readonly roles: readonly string[];
  readonly emailVerified: boolean;
  readonly active: boolean;
  readonly createdAt: Date;
  readonly updatedAt: Date;
}

/** A stored refresh token (by hash). */
export interface RefreshTokenRecord {
  readonly tokenHash: string;
  readonly familyId: string;
  readonly userId: string;
  readonly createdAt: Date;
  readonly expiresAt: Date;
}

/** Outcome of presenting a refresh token for rotation. */
export type RotationResult =
  | { readonly kind: "rotated"; readonly previous: RefreshTokenRecord }
  | { readonly kind: "reused"; readonly familyId: string; readonly userId: string }
  | { readonly kind: "invalid" };

export type OneTimePurpose = "verify_email" | "reset_password";

export interface RevokedAccessToken {
  readonly jti: string;
  readonly expiresAt: Date;
  readonly sequence: bigint;
}

export interface OutboxMail {
  readonly id: string;
  readonly recipient: string;
  readonly template: string;
  readonly payload: Readonly<Record<string, string>>;
  readonly attempts: number;
}

export interface SigningKeyRecord {
  readonly kid: string;
  readonly alg: string;
  readonly privateJwk: Readonly<Record<string, unknown>>;
  readonly publicJwk: Readonly<Record<string, unknown>>;
  readonly createdAt: Date;
}

/**
 * Storage port of the auth service. Every method throws ConnectError:
 * ALREADY_EXISTS on a unique clash, UNAVAILABLE when the database is down,
 * INTERNAL otherwise. Lookups answer `undefined` when absent.
 */
export interface AuthStore {
  /** Runs `fn` atomically; everything it does through `tx` commits or rolls back together. */
  transaction<T>(fn: (tx: AuthStore) => Promise<T>): Promise<T>;

  /** Throws ALREADY_EXISTS when the email is taken. */
  insertUser(user: UserRecord): Promise<void>;
  getUserByEmail(email: string): Promise<UserRecord | undefined>;
  getUserById(id: string): Promise<UserRecord | undefined>;
  /** Changes the given fields; answers the updated user, or undefined when absent. */
  updateUser(id: string, patch: Partial<Pick<UserRecord, "passwordHash" | "emailVerified" | "active" | "roles">>, now: Date): Promise<UserRecord | undefined>;

  insertRefreshToken(token: RefreshTokenRecord): Promise<void>;
  /**
   * Marks the live token with `tokenHash` rotated, at most once even under
   * concurrency. A token already rotated is reuse: its whole family is revoked
   * and `reused` answered. Unknown, expired or revoked tokens are `invalid`.
   */
  rotateRefreshToken(tokenHash: string, now: Date): Promise<RotationResult>;
  getRefreshToken(tokenHash: string): Promise<(RefreshTokenRecord & { readonly revoked: boolean }) | undefined>;
  /** Revokes every token of the family. */
  revokeFamily(familyId: string, now: Date): Promise<void>;
  /** Revokes every refresh token of the user (password reset, deactivation). */
  revokeAllRefreshTokens(userId: string, now: Date): Promise<void>;
  /** Number of tokens of a family neither rotated, revoked nor expired. */
  countLiveInFamily(familyId: string, now: Date): Promise<number>;

  /** Idempotent per `jti`. */
  revokeAccessToken(jti: string, expiresAt: Date, now: Date): Promise<void>;
  isAccessTokenRevoked(jti: string): Promise<boolean>;
  /** Revocations with sequence > `afterSequence` whose token has not expired, in order. */
  listRevokedAccessTokens(afterSequence: bigint, limit: number, now: Date): Promise<RevokedAccessToken[]>;

  insertOneTimeToken(t: { tokenHash: string; purpose: OneTimePurpose; userId: string; createdAt: Date; expiresAt: Date }): Promise<void>;
  /** Uses the token once: answers its user id, or undefined when unknown, used, expired or of another purpose. */
  consumeOneTimeToken(tokenHash: string, purpose: OneTimePurpose, now: Date): Promise<string | undefined>;
  /** Invalidates the user's unused tokens of a purpose (a newer one supersedes them). */
  expireOneTimeTokens(userId: string, purpose: OneTimePurpose, now: Date): Promise<void>;

  enqueueMail(mail: { id: string; recipient: string; template: string; payload: Record<string, string>; createdAt: Date }): Promise<void>;
  /** Up to `limit` unsent mails due at `now`, locked against other dispatchers until the transaction ends. */
  claimDueMail(limit: number, now: Date): Promise<OutboxMail[]>;
  markMailSent(id: string, now: Date): Promise<void>;
  markMailFailed(id: string, error: string, nextAttemptAt: Date): Promise<void>;

  listSigningKeys(): Promise<SigningKeyRecord[]>;
  insertSigningKey(key: SigningKeyRecord): Promise<void>;
}
