-- Projects belong to one owner (the user id the gateway forwards); names are
-- unique per owner.
CREATE TABLE projects (
  id          uuid PRIMARY KEY,
  owner_id    text NOT NULL,
  name        text NOT NULL,
  description text NOT NULL DEFAULT '',
  created_at  timestamptz NOT NULL,
  updated_at  timestamptz NOT NULL,
  UNIQUE (owner_id, name)
);
CREATE INDEX projects_owner ON projects (owner_id, created_at);

-- API keys: only the SHA-256 of the plaintext is stored.
CREATE TABLE api_keys (
  id           uuid PRIMARY KEY,
  project_id   uuid NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
  key_hash     text NOT NULL UNIQUE,
  prefix       text NOT NULL,
  name         text NOT NULL,
  expires_at   timestamptz,
  created_at   timestamptz NOT NULL,
  last_used_at timestamptz,
  revoked_at   timestamptz
);
CREATE INDEX api_keys_project ON api_keys (project_id, created_at);

-- Keys that stopped working, in version order, for gateways' WatchKeyEvents.
-- Not tied to api_keys by foreign key: events outlive deleted projects.
CREATE TABLE key_events (
  version     bigserial PRIMARY KEY,
  kind        text NOT NULL CHECK (kind IN ('revoked', 'project_deleted')),
  key_id      uuid NOT NULL,
  key_hash    text NOT NULL,
  project_id  uuid NOT NULL,
  occurred_at timestamptz NOT NULL
);
CREATE INDEX key_events_time ON key_events (occurred_at);

-- Per-project route overrides.
CREATE TABLE route_configs (
  id                uuid PRIMARY KEY,
  project_id        uuid NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
  method            text NOT NULL,
  path              text NOT NULL,
  service           text NOT NULL,
  rate_limit        integer,
  cache_ttl_seconds integer,
  active            boolean NOT NULL,
  created_at        timestamptz NOT NULL,
  updated_at        timestamptz NOT NULL,
  UNIQUE (project_id, method, path)
);
CREATE INDEX route_configs_active ON route_configs (active);

-- Changes to the set of active route configs, in version order, for WatchRoutes.
CREATE TABLE route_events (
  version     bigserial PRIMARY KEY,
  kind        text NOT NULL CHECK (kind IN ('upserted', 'deleted')),
  route_id    uuid NOT NULL,
  route       jsonb,
  occurred_at timestamptz NOT NULL
);
CREATE INDEX route_events_time ON route_events (occurred_at);
