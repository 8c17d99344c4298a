CREATE TABLE IF NOT EXISTS manifold_migrations (
    version    integer PRIMARY KEY,
    name       text NOT NULL,
    variant    text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
);
