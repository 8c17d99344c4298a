-- Is timescaledb already installed in this database, and could it be? Both catalogs are readable
-- by any role (shared_preload_libraries is not, on some managed hosts).
SELECT (SELECT extversion FROM pg_extension WHERE extname = 'timescaledb') AS installed,
       EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb') AS available
