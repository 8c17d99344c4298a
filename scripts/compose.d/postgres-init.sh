# shellcheck shell=bash
# Run once by the TimescaleDB image on an empty data directory (docker-compose.kafka.yml mounts
# it into /docker-entrypoint-initdb.d/, where the image's entrypoint sources it as the
# superuser). Creates what the application role may not create itself: the role `manifold` (not
# a superuser), owner of the databases `manifold` and `apicurio` (the registry's storage), and
# the TimescaleDB extension. Grafana's read-only role is made later by the compose service
# `grants` (`manifold grants grafana`), once the migrations created the views it may read.
# The password comes from the service's environment (MANIFOLD_DB_PASSWORD).
# Sourced, not executed, by the entrypoint (which runs with set -Eeo pipefail): no `set` here.

psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
  -v manifold_password="${MANIFOLD_DB_PASSWORD:?}" <<'SQL'
CREATE ROLE manifold LOGIN PASSWORD :'manifold_password';
CREATE DATABASE manifold OWNER manifold;
CREATE DATABASE apicurio OWNER manifold;
SQL

# TimescaleDB is not a trusted extension: the superuser creates it, the migrations find it.
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname manifold \
  -c 'CREATE EXTENSION IF NOT EXISTS timescaledb;'
