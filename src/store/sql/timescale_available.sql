-- The extension must be installed and preloaded; one without the other fails at CREATE EXTENSION.
SELECT EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb')
   AND current_setting('shared_preload_libraries') LIKE '%timescaledb%'
