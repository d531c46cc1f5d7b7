-- Users: email is stored normalized (trimmed, lower-case), so UNIQUE is the uniqueness rule.
CREATE TABLE users (
  id             uuid PRIMARY KEY,
  email          text NOT NULL UNIQUE,
  name           text NOT NULL,
  password_hash  text NOT NULL,
  roles          text[] NOT NULL,
  email_verified boolean NOT NULL DEFAULT false,
  active         boolean NOT NULL DEFAULT true,
  created_at     timestamptz NOT NULL,
  updated_at     timestamptz NOT NULL
);

-- Refresh tokens are kept only as SHA-256 hashes. A family is the chain of
-- rotations from one login; rotated_at marks a used token, revoked_at a dead one.
CREATE TABLE refresh_tokens (
  token_hash text PRIMARY KEY,
  family_id  uuid NOT NULL,
  user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  created_at timestamptz NOT NULL,
  expires_at timestamptz NOT NULL,
  rotated_at timestamptz,
  revoked_at timestamptz
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_user ON refresh_tokens (user_id);

-- Access tokens revoked before their expiry (logout), readable by gateways in
-- sequence order.
CREATE TABLE revoked_access_tokens (
  sequence   bigserial PRIMARY KEY,
  jti        text NOT NULL UNIQUE,
  expires_at timestamptz NOT NULL,
  revoked_at timestamptz NOT NULL
);

-- Single-use tokens for email verification and password reset, stored hashed.
CREATE TABLE one_time_tokens (
  token_hash text PRIMARY KEY,
  purpose    text NOT NULL CHECK (purpose IN ('verify_email', 'reset_password')),
  user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  created_at timestamptz NOT NULL,
  expires_at timestamptz NOT NULL,
  used_at    timestamptz
);
CREATE INDEX one_time_tokens_user ON one_time_tokens (user_id, purpose);

-- Mail is written in the same transaction as the token it carries and sent
-- by the outbox dispatcher, so a crash never loses or half-sends a message.
CREATE TABLE mail_outbox (
  id              uuid PRIMARY KEY,
  recipient       text NOT NULL,
  template        text NOT NULL,
  payload         jsonb NOT NULL,
  created_at      timestamptz NOT NULL,
  attempts        integer NOT NULL DEFAULT 0,
  next_attempt_at timestamptz NOT NULL,
  sent_at         timestamptz,
  last_error      text
);
CREATE INDEX mail_outbox_pending ON mail_outbox (next_attempt_at) WHERE sent_at IS NULL;

-- Signing keys generated in embedded mode (production keys come from configuration).
CREATE TABLE signing_keys (
  kid         text PRIMARY KEY,
  alg         text NOT NULL,
  private_jwk jsonb NOT NULL,
  public_jwk  jsonb NOT NULL,
  created_at  timestamptz NOT NULL
);
