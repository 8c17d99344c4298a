-- Accounts, equipment and the per-series catalogue.

CREATE TABLE users (
    user_id     uuid PRIMARY KEY,
    email       text NOT NULL,
    name        text NOT NULL,
    tier        text NOT NULL DEFAULT 'free' CHECK (tier IN ('free', 'pro', 'enterprise')),
    role        text NOT NULL DEFAULT 'user' CHECK (role IN ('user', 'admin')),
    created_at  timestamptz NOT NULL DEFAULT now(),
    disabled_at timestamptz
);
-- Emails compare case-insensitively, as people type them.
CREATE UNIQUE INDEX users_email_key ON users (lower(email));

-- Keys are shown once; only a hash is kept, with a short prefix to find the row.
CREATE TABLE api_keys (
    key_id       uuid PRIMARY KEY,
    user_id      uuid NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    prefix       text NOT NULL,
    hash         bytea NOT NULL UNIQUE,
    name         text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz,
    revoked_at   timestamptz
);
CREATE INDEX api_keys_user ON api_keys (user_id);
CREATE INDEX api_keys_prefix ON api_keys (prefix) WHERE revoked_at IS NULL;

-- topology is validated in code (Topology::validate) before it is stored.
CREATE TABLE equipment (
    system_id     text PRIMARY KEY,
    owner_id      uuid NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    name          text NOT NULL,
    topology      jsonb NOT NULL,
    topology_hash text NOT NULL,
    version       bigint NOT NULL DEFAULT 1,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX equipment_owner ON equipment (owner_id, system_id);

-- One series is one sensor of one system; readings refer to it by a small integer.
CREATE TABLE series (
    series_id      integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    system_id      text NOT NULL REFERENCES equipment (system_id) ON DELETE CASCADE,
    sensor_id      text NOT NULL,
    kind           text NOT NULL,
    unit           text NOT NULL,
    component_id   text,
    sample_rate_hz double precision,
    min_value      double precision NOT NULL,
    max_value      double precision NOT NULL,
    UNIQUE (system_id, sensor_id),
    CHECK (min_value < max_value)
);

-- Last value per series, kept by ingest, so "latest" never scans readings.
CREATE TABLE latest_readings (
    series_id integer PRIMARY KEY,
    time      timestamptz NOT NULL,
    value     double precision NOT NULL
);

-- Requests and readings per user and day, flushed from memory by the API.
CREATE TABLE usage_daily (
    user_id  uuid NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    day      date NOT NULL,
    requests bigint NOT NULL DEFAULT 0,
    readings bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (user_id, day)
);
