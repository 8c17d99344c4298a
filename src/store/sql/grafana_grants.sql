-- Part 2, as the owner of manifold's tables (the application role), in manifold's database.
-- The dashboards read these views only (migration 0007). A view reads its tables with its
-- owner's privileges, so nothing else is granted: not users, not API key hashes, not the
-- readings partitions (or TimescaleDB chunks) themselves, and partitions created later need
-- no default privileges. The views show every tenant's data: Grafana is an operator tool.
DO $$
BEGIN
    EXECUTE format('GRANT CONNECT ON DATABASE %I TO "{role}"', current_database());
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO "{role}"', current_schema());
END
$$;
GRANT SELECT ON grafana_series, grafana_sensor_1m, grafana_readings, grafana_scores, grafana_dead_letters TO "{role}";
