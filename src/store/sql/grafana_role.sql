-- Part 1, as a role that may create roles (CREATEROLE or superuser); the application role may not.
-- A role Grafana's data source uses: read-only sessions, bounded statements.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{role}') THEN
        CREATE ROLE "{role}" NOLOGIN;
    END IF;
END
$$;
ALTER ROLE "{role}" SET default_transaction_read_only = on;
ALTER ROLE "{role}" SET statement_timeout = '30s';
