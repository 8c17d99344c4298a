# shellcheck shell=bash
# Run once by the TimescaleDB image on an empty data directory (docker-compose.kafka.yml mounts
# it into /docker-entrypoint-initdb.d/, where the image's entrypoint sources it as the
# superuser). Creates what the application role may not create itself:
#   manifold  owns the databases `manifold` and `apicurio` (the registry's storage); not a superuser
#   grafana   read-only: SELECT on everything manifold creates in `manifold`, nothing else. It sees
#             every tenant's data: Grafana is an operator's tool.
# Passwords come from the service's environment (MANIFOLD_DB_PASSWORD, GRAFANA_DB_PASSWORD).
# Sourced, not executed, by the entrypoint (which runs with set -Eeo pipefail): no `set` here.

psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
  -v manifold_password="${MANIFOLD_DB_PASSWORD:?}" -v grafana_password="${GRAFANA_DB_PASSWORD:?}" <<'SQL'
CREATE ROLE manifold LOGIN PASSWORD :'manifold_password';
CREATE ROLE grafana LOGIN PASSWORD :'grafana_password';
CREATE DATABASE manifold OWNER manifold;
CREATE DATABASE apicurio OWNER manifold;
SQL

psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname manifold <<'SQL'
-- TimescaleDB is not a trusted extension: the superuser creates it, the migrations find it.
CREATE EXTENSION IF NOT EXISTS timescaledb;
GRANT CONNECT ON DATABASE manifold TO grafana;
GRANT USAGE ON SCHEMA public TO grafana;
-- Tables and views appear later, created by `manifold migrate` as manifold.
ALTER DEFAULT PRIVILEGES FOR ROLE manifold IN SCHEMA public GRANT SELECT ON TABLES TO grafana;
SQL
